package clip

import "testing"

func TestTo(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"a b", 0, "…"},
	} {
		if got := To(tt.s, tt.n); got != tt.want {
			t.Errorf("To(%q, %d) = %q; want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestLine(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"  a \n\t b  ", 10, "a b"},
		{"a\n\nbcdef", 4, "a bc…"},
		{"ab", 2, "ab"},
	} {
		if got := Line(tt.s, tt.n); got != tt.want {
			t.Errorf("Line(%q, %d) = %q; want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
