// Package subid is what a subscription id looks like: the one definition of a
// valid key (every entry point checks it, through worker.ValidID) and of a
// Zuora subscription number (the syncer asks Zuora first for those). It
// imports nothing of zsync, so worker and syncer can both use it.
package subid

import "regexp"

// MaxLen is the longest subscription key accepted.
const MaxLen = 64

var (
	// Zuora's default subscription number is A-S plus digits. Tenants can
	// change the prefix in their numbering settings, so accept uppercase
	// alphanumeric groups joined by single hyphens, starting with a letter,
	// with at least one hyphen and ending in a digit: A-S00000271,
	// SUB-000123, GB-S00001234. Lowercase, dots, slashes, '%' and anything
	// non-ASCII are refused, so the id is safe as a URL path segment.
	zuoraNumberRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$`)
	limioIDRE     = regexp.MustCompile(`^sub-[0-9a-zA-Z]{8,64}$`)
	// Limio's 12-character reference; Limio also sends it to Zuora as the
	// subscription number of the subscriptions it creates.
	limioRefRE = regexp.MustCompile(`^[A-Z0-9]{12}$`)
)

// Valid reports whether id is a subscription key zsync accepts: a Zuora
// subscription number (A-S00000271), a Limio id (sub-…) or a Limio reference
// (12 characters A-Z0-9), at most MaxLen characters.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	return limioIDRE.MatchString(id) || limioRefRE.MatchString(id) || ZuoraNumber(id)
}

// ZuoraNumber reports whether id has the form of a Zuora subscription number
// (any tenant prefix, see zuoraNumberRE). No Limio id or reference has it: a
// Limio id is lowercase "sub-", a reference has no hyphen.
func ZuoraNumber(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	last := id[len(id)-1]
	return last >= '0' && last <= '9' && zuoraNumberRE.MatchString(id)
}
