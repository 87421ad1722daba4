package subid

import (
	"strings"
	"testing"
)

// Zuora numbers are told apart from Limio's ids and references, whatever
// the tenant's prefix.
func TestZuoraNumber(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"A-S00000271": true, "SUB-000123": true, "GB-S00001234": true,
		"sub-0123456789abcdef": false, "3V053CN9SFIG": false, "A-SX": false, "A-S": false,
		"a-s1": false, "": false, strings.Repeat("A", 60) + "-S1234": false,
	} {
		if got := ZuoraNumber(id); got != want {
			t.Errorf("ZuoraNumber(%q) = %v; want %v", id, got, want)
		}
	}
}

// Every Zuora number is a valid key, and so are Limio's ids and references.
func TestValid(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"A-S00000271": true, "sub-0123456789abcdef": true, "3V053CN9SFIG": true,
		"sub-x": false, "A-S1/..": false, "A-S{1}": false, "A-S1 ": false,
	} {
		if got := Valid(id); got != want {
			t.Errorf("Valid(%q) = %v; want %v", id, got, want)
		}
	}
}
