package worker

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/syncer"
)

func TestRetryClassification(t *testing.T) {
	t.Parallel()
	p := retryPolicy{Base: time.Second, Cap: 5 * time.Minute}
	up := func(k upstream.Kind, ra time.Duration) error {
		return fmt.Errorf("read subscription: %w", &upstream.Error{API: "zuora", Op: "GET", Kind: k, RetryAfter: ra})
	}
	tests := []struct {
		desc          string
		err           error
		n             int
		wantClass     errClass
		wantFailure   bool
		minDelay, max time.Duration // only for non-permanent
	}{
		{"syncer permanent", syncer.Permanent(errors.New("bad data")), 0, classPermanent, true, 0, 0},
		{"upstream permanent", up(upstream.Permanent, 0), 0, classPermanent, true, 0, 0},
		{"upstream not found", up(upstream.NotFound, 0), 0, classPermanent, true, 0, 0},
		{"syncer not found", fmt.Errorf("x: %w", syncer.ErrNotFound), 0, classPermanent, true, 0, 0},
		{"skip retry", fmt.Errorf("bad payload: %w", asynq.SkipRetry), 0, classPermanent, true, 0, 0},
		{"throttled with Retry-After", up(upstream.Throttled, 3*time.Second), 4, classThrottled, false, 3 * time.Second, 5 * time.Second},
		{"throttled without Retry-After", up(upstream.Throttled, 0), 0, classThrottled, false, time.Second, 1250 * time.Millisecond},
		{"lock busy", &lockBusyError{Key: "X", RetryIn: 1500 * time.Millisecond}, 2, classLockBusy, false, 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"retryable first", up(upstream.Retryable, 0), 0, classRetry, true, 0, time.Second},
		{"retryable third", up(upstream.Retryable, 0), 3, classRetry, true, 0, 8 * time.Second},
		{"retryable capped", up(upstream.Retryable, 0), 40, classRetry, true, 0, 5 * time.Minute},
		{"retryable honours larger Retry-After", up(upstream.Retryable, 30*time.Second), 0, classRetry, true, 30 * time.Second, 39 * time.Second},
		{"unauthorized first", up(upstream.Unauthorized, 0), 0, classUnauthorized, true, 5 * time.Second, 10 * time.Second},
		{"unauthorized second", up(upstream.Unauthorized, 0), 1, classUnauthorized, true, 10 * time.Second, 20 * time.Second},
		{"lost lock", fmt.Errorf("sync: %w", ErrLockLost), 1, classRetry, true, 0, 2 * time.Second},
		{"unknown error", errors.New("boom"), 2, classRetry, true, 0, 4 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := classify(tc.err); got != tc.wantClass {
				t.Errorf("classify = %d; want %d", got, tc.wantClass)
			}
			if got := isFailure(tc.err); got != tc.wantFailure {
				t.Errorf("isFailure = %v; want %v", got, tc.wantFailure)
			}
			if tc.wantClass == classPermanent {
				return
			}
			for range 200 {
				if d := p.RetryDelay(tc.n, tc.err, nil); d < tc.minDelay || d > tc.max {
					t.Fatalf("RetryDelay(%d) = %s; want within [%s, %s]", tc.n, d, tc.minDelay, tc.max)
				}
			}
		})
	}
	if isFailure(nil) {
		t.Error("isFailure(nil) = true")
	}
}

// A 401 after the token refresh is tried on the first authAttempts attempts
// of a task, then archived; a permanent error at once; others never early.
func TestArchiveNow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		class   errClass
		retried int
		want    bool
	}{
		{classPermanent, 0, true},
		{classUnauthorized, 0, false}, {classUnauthorized, 1, false}, {classUnauthorized, 2, true}, {classUnauthorized, 7, true},
		{classRetry, 0, false}, {classRetry, 9, false}, {classThrottled, 9, false}, {classLockBusy, 9, false},
	} {
		if got := archiveNow(tc.class, tc.retried); got != tc.want {
			t.Errorf("archiveNow(%d, retried %d) = %v; want %v", tc.class, tc.retried, got, tc.want)
		}
	}
}

// Full jitter spreads delays: not all equal, not all at the ceiling.
func TestRetryDelayJitters(t *testing.T) {
	t.Parallel()
	p := retryPolicy{Base: time.Second, Cap: time.Minute}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[p.RetryDelay(5, errors.New("x"), nil)] = true
	}
	if len(seen) < 10 {
		t.Errorf("%d distinct delays in 50; want jitter", len(seen))
	}
}

// asynq keeps a retry's time in whole seconds, truncated, and runs the task
// once that second begins: the delay for a Retry-After ends on a whole
// second no earlier than asked, with whole seconds of jitter on top.
func TestRetryAfterWholeSeconds(t *testing.T) {
	t.Parallel()
	up := func(k upstream.Kind, ra time.Duration) error {
		return fmt.Errorf("write: %w", &upstream.Error{API: "limio", Op: "PUT", Kind: k, RetryAfter: ra})
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		desc   string
		now    time.Time
		err    error
		ra     time.Duration
		spread time.Duration // the most jitter added: ceil(ra/4) whole seconds
	}{
		{"throttled 1s late in the second", base.Add(700 * time.Millisecond), up(upstream.Throttled, time.Second), time.Second, time.Second},
		{"throttled 1s on the second", base, up(upstream.Throttled, time.Second), time.Second, time.Second},
		{"throttled 1.5s", base.Add(900 * time.Millisecond), up(upstream.Throttled, 1500*time.Millisecond), 1500 * time.Millisecond, time.Second},
		{"throttled 20s", base.Add(10 * time.Millisecond), up(upstream.Throttled, 20*time.Second), 20 * time.Second, 5 * time.Second},
		{"retryable 503 with Retry-After 2s", base.Add(999 * time.Millisecond), up(upstream.Retryable, 2*time.Second), 2 * time.Second, time.Second},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := retryPolicy{Base: 10 * time.Millisecond, Cap: 20 * time.Millisecond, Now: func() time.Time { return tc.now }}
			asked := tc.now.Add(tc.ra)
			earliest := asked.Truncate(time.Second)
			if earliest.Before(asked) {
				earliest = earliest.Add(time.Second)
			}
			seen := map[time.Duration]bool{}
			for range 200 {
				d := p.RetryDelay(0, tc.err, nil)
				seen[d] = true
				// What asynq does with d: the score is the retry time's Unix
				// second, and the task runs once that second has begun.
				runs := time.Unix(tc.now.Add(d).Unix(), 0)
				if runs.Before(asked) {
					t.Fatalf("delay %s: asynq runs the task at %s, before the Retry-After's %s", d, runs.Format(time.StampMilli), asked.Format(time.StampMilli))
				}
				if at := tc.now.Add(d); at.Nanosecond() != 0 {
					t.Fatalf("delay %s ends at %s, not on a whole second", d, at.Format(time.StampMilli))
				}
				if late := tc.now.Add(d).Sub(earliest); late > tc.spread {
					t.Fatalf("delay %s: %s past the first whole second after the Retry-After; want jitter up to %s", d, late, tc.spread)
				}
			}
			if len(seen) < 2 {
				t.Errorf("delays %v: want jitter on top of the Retry-After", seen)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{Prefix: "zs{1}:", Concurrency: -1, LockTTL: time.Millisecond, RetryBase: time.Minute, RetryCap: time.Second}.WithDefaults()
	err := bad.Validate()
	for _, field := range []string{"worker.prefix", "worker.concurrency", "worker.lock_ttl", "worker.retry_cap"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v; want a message naming %s", err, field)
		}
	}
}
