package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/redistest"
)

func TestLockExtensionKeepsLongSync(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	const ttl = 150 * time.Millisecond
	l, err := tryLock(t.Context(), rdb, "zsync:lock:X", ttl)
	if err != nil || l == nil {
		t.Fatalf("tryLock = %v, %v; want the lock", l, err)
	}
	ctx, stop := l.keep(t.Context())
	// Well past several TTLs the lock is still ours and the sync goes on.
	end := time.Now().Add(5 * ttl)
	for time.Now().Before(end) {
		if other, err := tryLock(t.Context(), rdb, "zsync:lock:X", ttl); err != nil || other != nil {
			t.Fatalf("second tryLock = %v, %v; want busy", other, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("sync context ended: %v", context.Cause(ctx))
		}
		time.Sleep(ttl / 5)
	}
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
	case <-time.After(2 * time.Second):
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
	case <-time.After(3 * time.Second):
		t.Fatal("context not cancelled while the lock could not be confirmed")
	}
}
