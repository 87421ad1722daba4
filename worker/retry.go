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

// lockBusyError says another run holds the subscription's lock. It is not a
// failure: the task comes back after RetryIn without spending a retry, and
// keeps its id meanwhile, so new callouts keep coalescing into it.
type lockBusyError struct {
	Key     string
	RetryIn time.Duration
}

func (e *lockBusyError) Error() string {
	return fmt.Sprintf("subscription %s is being synced; retry in %s", e.Key, e.RetryIn)
}

// errClass is what a task error means for the retry policy.
type errClass int

const (
	classRetry        errClass = iota // transient: back off and retry, counts as a failure
	classPermanent                    // will fail the same way: archive
	classThrottled                    // asked to wait: retry after RetryAfter, not a failure
	classLockBusy                     // wait for the lock: retry shortly, not a failure
	classUnauthorized                 // credentials refused after a fresh token: a few tries, then archive
)

// authAttempts is how many attempts a task makes while the API refuses
// zsync's credentials (a 401 after the one token refresh) before it is
// archived: enough to ride out a rotation whose two halves don't land at
// once, or a new token not yet valid on every API node; a wrong secret
// fails the same way every time and must not spend a whole retry budget.
const authAttempts = 3

// classify is the one place that decides what an error means.
func classify(err error) errClass {
	var busy *lockBusyError
	if errors.As(err, &busy) {
		return classLockBusy
	}
	if errors.Is(err, asynq.SkipRetry) || syncer.IsPermanent(err) || isNotFound(err) {
		return classPermanent
	}
	var ue *upstream.Error
	if errors.As(err, &ue) {
		switch ue.Kind {
		case upstream.Permanent, upstream.NotFound:
			return classPermanent
		case upstream.Throttled:
			return classThrottled
		case upstream.Unauthorized:
			return classUnauthorized
		}
	}
	// Retryable upstream errors, Redis errors, a lost lock, a deadline.
	return classRetry
}

// archiveNow reports whether a task that failed with an error of class on
// the attempt after retried retries is archived at once, retries left or not.
func archiveNow(class errClass, retried int) bool {
	switch class {
	case classPermanent:
		return true
	case classUnauthorized:
		return retried+1 >= authAttempts
	}
	return false
}

// isNotFound reports an error that means the subscription doesn't exist:
// the syncer's verdict, not any 404 on the way (a Limio write or a related
// objects read answering 404 is a failure to look at, not a missing
// subscription). The rule is the syncer's (ErrorResult), stated once.
func isNotFound(err error) bool {
	return err != nil && syncer.ErrorResult(err) == syncer.NotFound
}

// isFailure is asynq.Config.IsFailure: waiting for the lock or for an upstream
// limit does not spend the task's retry budget.
func isFailure(err error) bool {
	if err == nil {
		return false
	}
	c := classify(err)
	return c != classLockBusy && c != classThrottled
}

// retryPolicy computes retry delays: exponential backoff with full jitter for
// transient errors, the requested wait for throttling and lock contention.
type retryPolicy struct {
	Base time.Duration    // first backoff ceiling; default 1s
	Cap  time.Duration    // backoff ceiling; default 5m
	Now  func() time.Time // the clock a Retry-After is counted from; default time.Now
}

func (p retryPolicy) withDefaults() retryPolicy {
	if p.Base <= 0 {
		p.Base = defaultRetryBase
	}
	if p.Cap <= 0 {
		p.Cap = defaultRetryCap
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// RetryDelay is asynq.Config.RetryDelayFunc. n is the number of failures so
// far (lock and throttle waits don't count).
func (p retryPolicy) RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	p = p.withDefaults()
	ra := upstream.RetryAfter(err)
	switch classify(err) {
	case classLockBusy:
		var busy *lockBusyError
		errors.As(err, &busy)
		return busy.RetryIn
	case classThrottled:
		if ra <= 0 {
			return p.Base + rand.N(p.Base/4+1)
		}
		return p.retryAfter(ra)
	case classUnauthorized:
		// Credentials take seconds to change on both sides, not
		// milliseconds: from ten times the base, and never less than
		// half the ceiling, so the attempts don't come back at once.
		ceiling := p.ceiling(10*p.Base, n)
		return ceiling/2 + rand.N(ceiling/2+1)
	default:
		d := rand.N(p.ceiling(p.Base, n) + 1)
		if ra > 0 {
			d = max(d, p.retryAfter(ra))
		}
		return d
	}
}

// ceiling is base doubled n times, at most Cap.
func (p retryPolicy) ceiling(base time.Duration, n int) time.Duration {
	if n < 30 && base<<n > 0 && base<<n < p.Cap {
		return base << n
	}
	return p.Cap
}

// retryAfter is the delay that honours an API's Retry-After ra in full.
// asynq keeps a retry's time in whole Unix seconds, truncated, and moves
// the task once that second has begun: a delay that ends within a second
// runs it up to a second early. The delay therefore ends on the first whole
// second at or after now+ra, plus jitter in whole seconds (up to a quarter
// of ra, at least one second's choice) to spread the callers throttled
// together; each second is one batch of asynq's forwarder.
func (p retryPolicy) retryAfter(ra time.Duration) time.Duration {
	now := p.Now()
	at := now.Add(ra)
	if whole := at.Truncate(time.Second); whole.Before(at) {
		at = whole.Add(time.Second)
	}
	spread := (ra/4 + time.Second - 1) / time.Second // ceil(ra/4) in seconds
	return at.Sub(now) + time.Duration(rand.N(int64(spread)+1))*time.Second
}
