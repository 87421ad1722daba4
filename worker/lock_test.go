package worker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/waittest"
)

func TestLockExtensionKeepsLongSync(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ext := &countExtends{}
	rdb.AddHook(ext)
	const ttl = 300 * time.Millisecond
	l, err := tryLock(t.Context(), rdb, "zsync:lock:X", ttl)
	if err != nil || l == nil {
		t.Fatalf("tryLock = %v, %v; want the lock", l, err)
	}
	ctx, stop := l.keep(t.Context())
	// Through seven extensions (every ttl/3: over two TTLs) the lock stays
	// ours and the sync goes on.
	waittest.For(t, 30*time.Second, "seven lock extensions", func() bool {
		if other, err := tryLock(t.Context(), rdb, "zsync:lock:X", ttl); err != nil || other != nil {
			t.Fatalf("second tryLock = %v, %v; want busy", other, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("sync context ended: %v", context.Cause(ctx))
		}
		return ext.n.Load() >= 7
	})
	if got := rdb.Get(t.Context(), "zsync:lock:X").Val(); got != l.token {
		t.Errorf("lock value = %q; want our token", got)
	}
	stop()
	if err := l.release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(t.Context(), "zsync:lock:X").Val(); n != 0 {
		t.Errorf("lock still exists after release")
	}
}

func TestLockLossCancelsContext(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	l, err := tryLock(t.Context(), rdb, "zsync:lock:Y", 150*time.Millisecond)
	if err != nil || l == nil {
		t.Fatalf("tryLock = %v, %v", l, err)
	}
	ctx, stop := l.keep(t.Context())
	defer stop()
	rdb.Set(t.Context(), "zsync:lock:Y", "thief", time.Second)
	select {
	case <-ctx.Done():
		if c := context.Cause(ctx); !errors.Is(c, ErrLockLost) {
			t.Errorf("cause = %v; want ErrLockLost", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("context not cancelled after the lock was taken over")
	}
	// Release must not delete the thief's lock.
	if err := l.release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := rdb.Get(t.Context(), "zsync:lock:Y").Val(); got != "thief" {
		t.Errorf("lock value after our release = %q; want the other holder's", got)
	}
}

func TestLockLossOnRedisDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	l, err := tryLock(t.Context(), rdb, "zsync:lock:Z", 150*time.Millisecond)
	if err != nil || l == nil {
		t.Fatalf("tryLock = %v, %v", l, err)
	}
	ctx, stop := l.keep(t.Context())
	defer stop()
	rs.Stop()
	select {
	case <-ctx.Done():
		if c := context.Cause(ctx); !errors.Is(c, ErrLockLost) {
			t.Errorf("cause = %v; want ErrLockLost", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("context not cancelled while the lock could not be confirmed")
	}
}

// countExtends counts lock extensions.
type countExtends struct{ n atomic.Int32 }

func (*countExtends) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countExtends) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if args := cmd.Args(); err == nil && len(args) > 1 && args[1] == extendScript.Hash() {
			h.n.Add(1)
		}
		return err
	}
}
func (*countExtends) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// slowThenFailExtends delays the answer to the first lock extension (it runs
// in Redis at once) and lets every later one hang until its context ends, as
// a stalling connection would.
type slowThenFailExtends struct {
	delay time.Duration
	n     atomic.Int32
	sent  atomic.Pointer[time.Time] // when the first extension went to Redis
}

func (h *slowThenFailExtends) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *slowThenFailExtends) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) < 2 || args[1] != extendScript.Hash() {
			return next(ctx, cmd)
		}
		if h.n.Add(1) > 1 {
			<-ctx.Done()
			cmd.SetErr(ctx.Err())
			return cmd.Err()
		}
		now := time.Now()
		h.sent.Store(&now)
		err := next(ctx, cmd)
		time.Sleep(h.delay)
		return err
	}
}
func (h *slowThenFailExtends) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// How long the lock is trusted counts from when an extension was sent, not
// from when its answer came, and no extension is waited for past that: after
// a slow answer and then hanging ones, the sync is stopped while the lock is
// still ours, not when it may already have expired.
func TestLockTrustedFromWhenExtendWasSent(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	const ttl = 1500 * time.Millisecond // extends every 500 ms
	l, err := tryLock(t.Context(), rdb, "zsync:lock:W", ttl)
	if err != nil || l == nil {
		t.Fatalf("tryLock = %v, %v", l, err)
	}
	hook := &slowThenFailExtends{delay: 450 * time.Millisecond}
	rdb.AddHook(hook)
	ctx, stop := l.keep(t.Context())
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("sync not stopped while its lock went unconfirmed")
	}
	stop() // the keeper has returned: l.at is settled
	// The lock was trusted from before the slow extension was sent, not from
	// its answer 450 ms later (which would have let the sync run past the
	// lock's real expiry). Compared as instants the keeper recorded, not as a
	// duration measured on a busy machine.
	sent := hook.sent.Load()
	if sent == nil {
		t.Fatal("no extension was sent")
	}
	if l.at.After(*sent) {
		t.Fatalf("lock trusted from %v, after the extension was sent at %v: the answer's time was used",
			l.at.Format(time.RFC3339Nano), sent.Format(time.RFC3339Nano))
	}
	if c := context.Cause(ctx); !errors.Is(c, ErrLockLost) {
		t.Fatalf("cause = %v; want ErrLockLost", c)
	}
}
