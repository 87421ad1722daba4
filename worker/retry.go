package worker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/syncer"
)

// LockBusyError says another run holds the subscription's lock. It is not a
// failure: the task comes back after RetryIn without spending a retry, and
// keeps its id meanwhile, so new callouts keep coalescing into it.
type LockBusyError struct {
	Key     string
	RetryIn time.Duration
}

func (e *LockBusyError) Error() string {
	return fmt.Sprintf("subscription %s is being synced; retry in %s", e.Key, e.RetryIn)
}

// errClass is what a task error means for the retry policy.
type errClass int

const (
	classRetry     errClass = iota // transient: back off and retry, counts as a failure
	classPermanent                 // will fail the same way: archive
	classThrottled                 // asked to wait: retry after RetryAfter, not a failure
	classLockBusy                  // wait for the lock: retry shortly, not a failure
)

// classify is the one place that decides what an error means.
func classify(err error) errClass {
	var busy *LockBusyError
	if errors.As(err, &busy) {
		return classLockBusy
	}
	if errors.Is(err, asynq.SkipRetry) || syncer.IsPermanent(err) || errors.Is(err, syncer.ErrNotFound) {
		return classPermanent
	}
	var ue *upstream.Error
	if errors.As(err, &ue) {
		switch ue.Kind {
		case upstream.Permanent, upstream.NotFound:
			return classPermanent
		case upstream.Throttled:
			return classThrottled
		}
	}
	// Retryable upstream errors, Redis errors, a lost lock, a deadline.
	return classRetry
}

// isNotFound reports an error that means the subscription doesn't exist:
// the syncer's verdict, not any 404 on the way (a Limio write or a related
// objects read answering 404 is a failure to look at, not a missing
// subscription).
func isNotFound(err error) bool {
	return errors.Is(err, syncer.ErrNotFound)
}

// IsFailure is asynq.Config.IsFailure: waiting for the lock or for an upstream
// limit does not spend the task's retry budget.
func IsFailure(err error) bool {
	if err == nil {
		return false
	}
	c := classify(err)
	return c != classLockBusy && c != classThrottled
}

// RetryPolicy computes retry delays: exponential backoff with full jitter for
// transient errors, the requested wait for throttling and lock contention.
type RetryPolicy struct {
	Base time.Duration // first backoff ceiling; default 1s
	Cap  time.Duration // backoff ceiling; default 5m
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Base <= 0 {
		p.Base = defaultRetryBase
	}
	if p.Cap <= 0 {
		p.Cap = defaultRetryCap
	}
	return p
}

// RetryDelay is asynq.Config.RetryDelayFunc. n is the number of failures so
// far (lock and throttle waits don't count).
func (p RetryPolicy) RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	p = p.withDefaults()
	switch classify(err) {
	case classLockBusy:
		var busy *LockBusyError
		errors.As(err, &busy)
		return busy.RetryIn
	case classThrottled:
		wait := upstream.RetryAfter(err)
		if wait <= 0 {
			wait = p.Base
		}
		// Spread the herd that was throttled together.
		return wait + rand.N(wait/4+1)
	default:
		ceiling := p.Cap
		if n < 30 && p.Base<<n > 0 && p.Base<<n < p.Cap {
			ceiling = p.Base << n
		}
		d := rand.N(ceiling + 1)
		if ra := upstream.RetryAfter(err); ra > d {
			d = ra
		}
		return d
	}
}
