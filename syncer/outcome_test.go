package syncer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/zsync/zsync/internal/upstream"
)

// A run that ended in an error records not_found only when neither system
// knows the key (ErrNotFound, however wrapped); any other error, an upstream
// 404 on some other object included, is failed.
func TestErrorResult(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
		want Result
	}{
		{"not found", ErrNotFound, NotFound},
		{"wrapped permanent", Permanent(fmt.Errorf("zuora A-S1: %w", ErrNotFound)), NotFound},
		{"upstream 404 alone", &upstream.Error{API: "limio", Kind: upstream.NotFound}, Failed},
		{"other", errors.New("boom"), Failed},
	} {
		if got := ErrorResult(tt.err); got != tt.want {
			t.Errorf("%s: ErrorResult = %q; want %q", tt.name, got, tt.want)
		}
	}
	if r := Results(); len(r) != 6 || r[0] != Created || r[5] != Failed {
		t.Errorf("Results() = %v", r)
	}
}
