package api

import (
	"errors"
	"regexp"

	"github.com/zsync/zsync/worker"
)

// Zuora order numbers (O-00000001) and Limio's references used as order
// numbers. The order number reaches a URL in the worker, so it is checked as
// strictly as the subscription key.
var orderNumberRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

var errInvalidID = errors.New("invalid subscription id: want a Zuora subscription number (A-S00000271), a Limio id (sub-…) or a Limio reference (12 characters A-Z0-9)")

// validateID checks a subscription key before any use (worker.ValidID is the
// one definition of a valid key) and says what is wrong for the caller.
func validateID(id string) error {
	if !worker.ValidID(id) {
		return errInvalidID
	}
	return nil
}

func validOrderNumber(s string) bool { return orderNumberRE.MatchString(s) }
