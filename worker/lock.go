package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLockLost is the cause of a sync's context cancellation when its
// subscription lock could not be kept: nothing may be written after it.
var ErrLockLost = errors.New("subscription lock lost")

var (
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
	extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
)

// subLock is one holder's claim on a subscription: SET NX PX with a random
// token, released and extended only by that token's holder.
type subLock struct {
	rdb   redis.UniversalClient
	key   string
	token string
	ttl   time.Duration
	at    time.Time // when the last successful take or extend was sent
}

// tryLock takes the lock, or returns nil when someone else holds it.
func tryLock(ctx context.Context, rdb redis.UniversalClient, key string, ttl time.Duration) (*subLock, error) {
	l := newSubLock(rdb, key, ttl)
	ok, err := rdb.SetNX(ctx, key, l.token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("take lock %s: %w", key, err)
	}
	if !ok {
		return nil, nil
	}
	return l, nil
}

// newSubLock is a claim on key with a fresh token, trusted from now (the
// instant its take is sent).
func newSubLock(rdb redis.UniversalClient, key string, ttl time.Duration) *subLock {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return &subLock{rdb: rdb, key: key, token: hex.EncodeToString(b[:]), ttl: ttl, at: time.Now()}
}

// release deletes the lock if it is still ours.
func (l *subLock) release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.token).Err(); err != nil {
		return fmt.Errorf("release lock %s: %w", l.key, err)
	}
	return nil
}

// releaseIn queues the release in pipe (EVALSHA: a NOSCRIPT answer, the
// script not yet loaded, leaves the lock for release to take).
func (l *subLock) releaseIn(ctx context.Context, pipe redis.Pipeliner) *redis.Cmd {
	return releaseScript.EvalSha(ctx, pipe, []string{l.key}, l.token)
}

// extend pushes the expiry out by ttl; false means the lock is no longer ours.
func (l *subLock) extend(ctx context.Context) (bool, error) {
	n, err := extendScript.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("extend lock %s: %w", l.key, err)
	}
	return n == 1, nil
}

// confirm checks on Redis that the lock is still ours, at this moment.
func (l *subLock) confirm(ctx context.Context) error {
	v, err := l.rdb.Get(ctx, l.key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("%w: %s is gone", ErrLockLost, l.key)
	case err != nil:
		return fmt.Errorf("%w: confirm %s: %w", ErrLockLost, l.key, err)
	case v != l.token:
		return fmt.Errorf("%w: %s is another run's", ErrLockLost, l.key)
	}
	return nil
}

// keep extends the lock every ttl/3 until stop is called. The returned
// context is cancelled with ErrLockLost as soon as the lock is someone else's,
// or when Redis errors leave it unconfirmed for as long as it could expire.
func (l *subLock) keep(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		interval := l.ttl / 3
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// The lock expires no sooner than ttl after the last successful
			// extend was sent (l.at), and no later than we can know: stop
			// trusting it a margin before that, however slow the answers.
			sent := time.Now()
			safe := l.at.Add(l.ttl - interval/2)
			if !sent.Before(safe) {
				cancel(fmt.Errorf("%w: not confirmed since %v", ErrLockLost, l.at.Format(time.RFC3339Nano)))
				return
			}
			deadline := sent.Add(interval)
			if safe.Before(deadline) {
				deadline = safe
			}
			ectx, ecancel := context.WithDeadline(ctx, deadline)
			ok, err := l.extend(ectx)
			ecancel()
			switch {
			case err == nil && ok:
				l.at = sent
			case err == nil:
				cancel(ErrLockLost)
				return
			case !time.Now().Add(interval).Before(safe):
				// The next extend would come too late.
				cancel(fmt.Errorf("%w: %w", ErrLockLost, err))
				return
			}
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			cancel(nil)
		})
	}
}
