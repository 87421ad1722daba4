package worker

import (
	"errors"
	"fmt"
	"unicode"

	"github.com/zsync/zsync/internal/subid"
)

// ValidID reports whether id is a subscription key zsync accepts: a Zuora
// subscription number (A-S00000271), a Limio id (sub-…) or a Limio reference
// (12 characters A-Z0-9), at most MaxIDLen characters. Subscription keys
// reach log lines, Redis keys and the URLs the clients build, so every entry
// point (the ingress, bulk re-sync, the CLI) checks them with ValidID first.
// The rule itself is internal/subid's, which the syncer shares.
func ValidID(id string) bool { return subid.Valid(id) }

// MaxIDLen is the longest subscription key accepted.
const MaxIDLen = subid.MaxLen

// errInvalidKey is returned (wrapped) for a subscription key the worker can't
// use: empty, too long, or with characters that don't belong in a Redis key or
// task id (braces would become Redis Cluster hash tags).
var errInvalidKey = errors.New("invalid subscription key")

const maxKeyLen = 200

// validateKey is what the worker itself needs of a key, whoever enqueued it:
// safe in a Redis key and a task id (idHyphen spells '-' there, so it can't
// be in a key). Every ValidID passes it; it is looser so that tasks of older
// or other enqueuers still run.
func validateKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("%w: %q", errInvalidKey, key)
	}
	for _, r := range key {
		if r == '{' || r == '}' || r == idHyphen || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %q", errInvalidKey, key)
		}
	}
	return nil
}
