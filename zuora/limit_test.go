package zuora_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// twoProcesses returns two limiters on separate Redis connections, as two
// worker processes would have.
func twoProcesses(t *testing.T, cfg zuora.LimitConfig) (*zuora.TenantLimiter, *zuora.TenantLimiter, *redistest.Server) {
	t.Helper()
	r := redistest.Start(t)
	return zuora.NewTenantLimiter(r.Client(t), cfg), zuora.NewTenantLimiter(r.Client(t), cfg), r
}

func wantThrottled(t *testing.T, err error) time.Duration {
	t.Helper()
	var e *upstream.Error
	if !errors.As(err, &e) || e.Kind != upstream.Throttled || e.RetryAfter <= 0 {
		t.Fatalf("err = %v; want throttled with RetryAfter", err)
	}
	return e.RetryAfter
}

func TestLimiterCapHoldsAcrossProcesses(t *testing.T) {
	t.Parallel()
	const limit = 5
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "cap", Concurrency: limit, MaxWait: 20 * time.Second})
	var inFlight, peak, done atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				release, err := l.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				n := inFlight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond) // the "request"
				inFlight.Add(-1)
				release()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > limit || peak.Load() < 2 || done.Load() != 320 {
		t.Fatalf("peak in flight %d (limit %d), done %d", peak.Load(), limit, done.Load())
	}
}

func TestLimiterLeaseOfCrashedHolderExpires(t *testing.T) {
	t.Parallel()
	crashed, other, _ := twoProcesses(t, zuora.LimitConfig{Key: "lease", Concurrency: 1,
		Lease: 300 * time.Millisecond, MaxWait: 50 * time.Millisecond})
	if _, err := crashed.Acquire(context.Background()); err != nil { // never released
		t.Fatal(err)
	}
	_, err := other.Acquire(context.Background())
	wantThrottled(t, err)

	waittest.For(t, 20*time.Second, "the crashed holder's lease to expire", func() bool {
		release, err := other.Acquire(context.Background())
		if err == nil {
			release()
		}
		return err == nil
	})
}

func TestLimiterPauseBlocksEveryProcess(t *testing.T) {
	t.Parallel()
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "pause", MaxWait: 100 * time.Millisecond})
	if err := a.Pause(context.Background(), 700*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, l := range []*zuora.TenantLimiter{a, b} {
		_, err := l.Acquire(context.Background())
		if d := wantThrottled(t, err); d < 300*time.Millisecond {
			t.Errorf("RetryAfter %v; want about the pause left", d)
		}
	}
	// A shorter pause doesn't cut the longer one short.
	if err := b.Pause(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, 20*time.Second, "an acquire after the pause", func() bool {
		release, err := b.Acquire(context.Background())
		if err == nil {
			release()
		}
		return err == nil
	})
	// A lower bound only (a slow machine makes it longer, never shorter).
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Fatalf("acquired after %v, inside the pause", el)
	}
}

func TestLimiterRateHolds(t *testing.T) {
	t.Parallel()
	// 600/min: a burst of 60, then 9 per second, shared by both processes.
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "rate", PerMinute: 600, MaxWait: 20 * time.Millisecond})
	var allowed, throttled atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 8 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < time.Second {
				release, err := l.Acquire(context.Background())
				if err != nil {
					if !errors.Is(err, upstream.ErrThrottled) {
						t.Error(err)
						return
					}
					throttled.Add(1)
					continue
				}
				allowed.Add(1)
				release()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	most := 60 + int64(9*el) + 2
	if n := allowed.Load(); n < 60 || n > most || throttled.Load() == 0 {
		t.Fatalf("allowed %d in %.2fs (want 60..%d), throttled %d", n, el, most, throttled.Load())
	}
}

func TestLimiterContextAndRedisDown(t *testing.T) {
	t.Parallel()
	a, _, r := twoProcesses(t, zuora.LimitConfig{Key: "ctx", Concurrency: 1, MaxWait: 10 * time.Second})
	release, err := a.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := a.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want the context's", err)
	}
	release()
	// Parked, the slot could pass to the next request without Redis
	// (limit_quiet.go): wait until it went back.
	waittest.For(t, 10*time.Second, "the parked lease back in Redis", func() bool {
		parked, _, _ := a.ParkStats()
		return parked == 0
	})
	r.Stop()
	_, err = a.Acquire(context.Background())
	var e *upstream.Error
	if !errors.As(err, &e) || e.Kind != upstream.Retryable {
		t.Fatalf("redis down: %v; want retryable", err)
	}
}

// A 429 from Zuora pauses every process sharing the limiter.
func TestClient429PausesTenant(t *testing.T) {
	t.Parallel()
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "wired", MaxWait: 100 * time.Millisecond})
	srv := contractServer(t)
	c, err := zuora.New(srv.Config(), zuora.WithHTTPClient(contractHTTP(t, nil)), zuora.WithLimiter(a))
	if err != nil {
		t.Fatal(err)
	}
	srv.AddFault(sandbox.Fault{Path: "/v1/subscriptions/", Status: http.StatusTooManyRequests, RetryAfterS: 5, Count: 1})
	if _, err := c.GetSubscription(context.Background(), "A-S00000101"); !errors.Is(err, upstream.ErrThrottled) {
		t.Fatalf("err = %v; want throttled", err)
	}
	_, err = b.Acquire(context.Background())
	if d := wantThrottled(t, err); d < 3*time.Second {
		t.Fatalf("other process told to wait %v; want about 5s", d)
	}
	before := srv.Count("", "/v1/")
	if _, err := c.GetSubscription(context.Background(), "A-S00000101"); !errors.Is(err, upstream.ErrThrottled) {
		t.Fatalf("during the pause: %v", err)
	}
	if srv.Count("", "/v1/") != before {
		t.Fatal("a request reached Zuora during the pause")
	}
}

// Under load, the shared limiter keeps the client inside the tenant's
// concurrency limit: the sandbox never has to answer 429.
func TestLimiterKeepsSandboxFrom429(t *testing.T) {
	t.Parallel()
	// One slot of margin: the sandbox counts a request as in flight until its
	// handler returns, a moment after the client has read the answer.
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "load", Concurrency: 4, MaxWait: 20 * time.Second})
	srv := contractServer(t, zuoratest.WithLimits(5, 0))
	srv.AddFault(sandbox.Fault{Path: "/v1/subscriptions/", LatencyMS: 10})
	if err := srv.Seed(os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, l := range []*zuora.TenantLimiter{a, b} {
		c, err := zuora.New(srv.Config(), zuora.WithHTTPClient(contractHTTP(t, nil)), zuora.WithLimiter(l))
		if err != nil {
			t.Fatal(err)
		}
		for range 15 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					if _, err := c.GetSubscription(context.Background(), "A-S00000101"); err != nil {
						t.Errorf("process %d: %v", i, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if n := srv.Throttled(); n != 0 || srv.Count("GET", "/v1/subscriptions/") != 90 {
		t.Fatalf("sandbox answered %d 429s, served %d", n, srv.Count("GET", "/v1/subscriptions/"))
	}
}
