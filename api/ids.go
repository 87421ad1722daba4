package api

import (
	"errors"
	"regexp"
)

// idKind says which kind of key a validated id is.
type idKind string

const (
	kindZuoraNumber    idKind = "zuora_number"    // A-S00000271
	kindLimioID        idKind = "limio_id"        // sub-…
	kindLimioReference idKind = "limio_reference" // 3V053CN9SFIG
)

const maxIDLen = 64

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
	// Zuora order numbers (O-00000001) and Limio's references used as order
	// numbers. The order number reaches a URL in the worker, so it is
	// checked as strictly as the subscription key.
	orderNumberRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
)

var errInvalidID = errors.New("invalid subscription id: want a Zuora subscription number (A-S00000271), a Limio id (sub-…) or a Limio reference (12 characters A-Z0-9)")

// validateID checks a subscription key before any use: in a log line, a
// Redis key, or a URL the worker builds.
func validateID(id string) (idKind, error) {
	if id == "" || len(id) > maxIDLen {
		return "", errInvalidID
	}
	switch {
	case limioIDRE.MatchString(id):
		return kindLimioID, nil
	case limioRefRE.MatchString(id):
		return kindLimioReference, nil
	case zuoraNumberRE.MatchString(id) && isDigit(id[len(id)-1]):
		return kindZuoraNumber, nil
	}
	return "", errInvalidID
}

func validOrderNumber(s string) bool { return orderNumberRE.MatchString(s) }

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
