package api

import (
	"strings"
	"testing"

	"github.com/zsync/zsync/worker"
)

func TestValidateID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want bool // accepted
	}{
		{"A-S00000271", true},
		{"A-S1", true},
		{"SUB-000123", true},
		{"GB-S00001234", true},
		{"sub-5c3d1a2b", true},
		{"sub-" + strings.Repeat("a", 60), true},
		{"3V053CN9SFIG", true},
		{"", false},
		{"a-s00000271", false},
		{"A-S", false},
		{"A-SX", false},
		{"-S0001", false},
		{"A--S1", false},
		{"A-S1-", false},
		{"A-S1\n", false},
		{"sub-short", false},
		{"sub-abc_defgh", false},
		{"sub-" + strings.Repeat("a", 61), false}, // 65 chars
		{"3v053cn9sfig", false},
		{"3V053CN9SFI", false},
		{"../accounts/x", false},
		{"%2e%2e%2f", false},
		{"..%2Faccounts", false},
		{"A-S1/../x", false},
		{"A-S1 ", false},
		{"A S1", false},
		{"A-S1é", false},
		{"Ａ-S1", false},
		{"A-S1?x=1", false},
		{"A-S1#x", false},
		{"A-" + strings.Repeat("1", 63), false},
	}
	for _, tt := range tests {
		if err := validateID(tt.give); (err == nil) != tt.want {
			t.Errorf("validateID(%q) = %v; want accepted %v", tt.give, err, tt.want)
		}
	}
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"A-S00000271", "sub-5c3d1a2b", "3V053CN9SFIG", "../accounts/x", "%2e%2e%2f", "A-S1\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if validateID(id) != nil {
			return
		}
		if len(id) > worker.MaxIDLen {
			t.Fatalf("validateID(%q) accepted %d chars", id, len(id))
		}
		// An accepted id must be safe as a URL path segment and a Redis key.
		for _, r := range id {
			ok := r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
			if !ok {
				t.Fatalf("validateID(%q) accepted %q", id, r)
			}
		}
	})
}
