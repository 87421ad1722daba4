package api

import (
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want idKind // "" = rejected
	}{
		{"A-S00000271", kindZuoraNumber},
		{"A-S1", kindZuoraNumber},
		{"SUB-000123", kindZuoraNumber},
		{"GB-S00001234", kindZuoraNumber},
		{"sub-5c3d1a2b", kindLimioID},
		{"sub-" + strings.Repeat("a", 60), kindLimioID},
		{"3V053CN9SFIG", kindLimioReference},
		{"", ""},
		{"a-s00000271", ""},
		{"A-S", ""},
		{"A-SX", ""},
		{"-S0001", ""},
		{"A--S1", ""},
		{"A-S1-", ""},
		{"A-S1\n", ""},
		{"sub-short", ""},
		{"sub-abc_defgh", ""},
		{"sub-" + strings.Repeat("a", 61), ""}, // 65 chars
		{"3v053cn9sfig", ""},
		{"3V053CN9SFI", ""},
		{"../accounts/x", ""},
		{"%2e%2e%2f", ""},
		{"..%2Faccounts", ""},
		{"A-S1/../x", ""},
		{"A-S1 ", ""},
		{"A S1", ""},
		{"A-S1é", ""},
		{"Ａ-S1", ""},
		{"A-S1?x=1", ""},
		{"A-S1#x", ""},
		{"A-" + strings.Repeat("1", 63), ""},
	}
	for _, tt := range tests {
		got, err := validateID(tt.give)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("validateID(%q) = %q, %v; want %q", tt.give, got, err, tt.want)
		}
	}
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"A-S00000271", "sub-5c3d1a2b", "3V053CN9SFIG", "../accounts/x", "%2e%2e%2f", "A-S1\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		kind, err := validateID(id)
		if err != nil {
			if kind != "" {
				t.Fatalf("validateID(%q) = %q with error %v", id, kind, err)
			}
			return
		}
		if len(id) > maxIDLen {
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
