package clip

import "testing"

func TestClip(t *testing.T) {
	for _, tt := range []struct {
		name string
		fn   func(string, int) string
		s    string
		n    int
		want string
	}{
		{"To", To, "", 3, ""},
		{"To", To, "abc", 3, "abc"},
		{"To", To, "abcd", 3, "abc…"},
		{"To", To, "a b", 0, "…"},
		{"To", To, "aé", 2, "a…"}, // é is two bytes: never half a rune
		{"Line", Line, "  a \n\t b  ", 10, "a b"},
		{"Line", Line, "a\n\nbcdef", 4, "a bc…"},
		{"Line", Line, "ab", 2, "ab"},
	} {
		if got := tt.fn(tt.s, tt.n); got != tt.want {
			t.Errorf("%s(%q, %d) = %q; want %q", tt.name, tt.s, tt.n, got, tt.want)
		}
	}
}
