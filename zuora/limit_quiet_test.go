package zuora_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/zuora"
)

// quietNow waits for l's subscription, then runs an acquire script (the
// one of a second request), after which l knows the shared state is
// clear. The slot is released (and parked, if parking is on).
func quietNow(t *testing.T, l *zuora.TenantLimiter) {
	t.Helper()
	rel, err := l.Acquire(context.Background()) // starts the subscription
	if err != nil {
		t.Fatal(err)
	}
	waittest.For(t, 10*time.Second, "the signals subscription", func() bool {
		up, _, _ := l.QuietStats()
		return up
	})
	rel()
	if rel, err = l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	rel()
	if _, sure, _ := l.QuietStats(); !sure {
		t.Fatal("not sure of the shared state after a script found it clear")
	}
}

func (c *cmdCount) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

func TestLimiterQuietHandOffSendsNoCommand(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	rdb := r.Client(t)
	cc := &cmdCount{n: map[string]int{}}
	rdb.AddHook(cc)
	l := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Key: "quiet", Concurrency: 1, MaxWait: 20 * time.Second, ParkFor: -1})
	const sem = "{quiet}:limit:sem"
	quietNow(t, l)
	rel1, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first := rdb.ZRange(context.Background(), sem, 0, -1).Val()
	second := acquireAsync(l)
	waittest.For(t, 10*time.Second, "the second request to queue", func() bool {
		w, _ := l.HandOffStats()
		return w == 1
	})
	cmds0 := cc.total()
	rel1()
	got := waittest.Recv(t, 10*time.Second, "the second request's slot", second)
	if got.err != nil {
		t.Fatal(got.err)
	}
	if n := cc.total() - cmds0; n != 0 {
		t.Errorf("%d Redis commands for a hand-off while quiet; want none", n)
	}
	if _, passed := l.HandOffStats(); passed != 1 {
		t.Errorf("%d hand-offs; want 1", passed)
	}
	if now := rdb.ZRange(context.Background(), sem, 0, -1).Val(); len(first) != 1 || len(now) != 1 || now[0] != first[0] {
		t.Errorf("leases %v after the hand-off of %v; want the same one", now, first)
	}
	got.release()
	if n := rdb.ZCard(context.Background(), sem).Val(); n != 0 {
		t.Errorf("%d leases after the last release; want 0", n)
	}
}

func TestLimiterUnsubscribedHandOffRunsScript(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	admin := r.Client(t)
	// A user that may do everything but subscribe: the limiter never
	// hears of changes, so it may never skip the script.
	if err := admin.Do(context.Background(), "ACL", "SETUSER", "nosub_quiet", "on", ">pw", "~*", "&*", "+@all", "-subscribe").Err(); err != nil {
		t.Fatal(err)
	}
	opt := r.Options()
	opt.Username, opt.Password = "nosub_quiet", "pw"
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	cc := &cmdCount{n: map[string]int{}}
	rdb.AddHook(cc)
	l := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Key: "nosub", Concurrency: 1, MaxWait: 20 * time.Second, ParkFor: -1})
	t.Cleanup(func() { _ = l.Close() })
	const sem = "{nosub}:limit:sem"
	rel1, err := l.Acquire(context.Background()) // starts the subscription
	if err != nil {
		t.Fatal(err)
	}
	waittest.For(t, 10*time.Second, "the subscription refused", func() bool { return l.QuietLost() >= 1 })
	rel1()                                                       // back to Redis: parking is off
	if rel1, err = l.Acquire(context.Background()); err != nil { // a script finding all clear, but unsubscribed
		t.Fatal(err)
	}
	if up, sure, _ := l.QuietStats(); up || sure {
		t.Fatalf("subscribed %v, sure %v without the right to subscribe", up, sure)
	}
	first := rdb.ZRange(context.Background(), sem, 0, -1).Val()
	second := acquireAsync(l)
	waittest.For(t, 10*time.Second, "the second request to queue", func() bool {
		w, _ := l.HandOffStats()
		return w == 1
	})
	scripts0 := cc.get("EVALSHA") + cc.get("EVAL")
	rel1()
	got := waittest.Recv(t, 10*time.Second, "the second request's slot", second)
	if got.err != nil {
		t.Fatal(got.err)
	}
	if n := cc.get("EVALSHA") + cc.get("EVAL") - scripts0; n != 1 {
		t.Errorf("%d acquire scripts for a hand-off unsubscribed; want 1", n)
	}
	if now := rdb.ZRange(context.Background(), sem, 0, -1).Val(); len(now) != 1 || now[0] == first[0] {
		t.Errorf("leases %v after the hand-off of %v; want one new lease", now, first)
	}
	got.release()
}

func TestLimiterOwnSlowDownEndsQuietAtOnce(t *testing.T) {
	t.Parallel()
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "qslow", Concurrency: 2, SlowBelow: 0.5, ParkFor: -1})
	quietNow(t, a)
	quietNow(t, b)
	_, _, seen0 := b.QuietStats()
	// Zuora tells a its budget runs low: a knows at once, without waiting
	// for its own message; b once the message arrives.
	if err := a.Observe(context.Background(), 200, upstream.Limits{HasRate: true, RateLimit: 100, RateRemaining: 10,
		RateReset: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, sure, _ := a.QuietStats(); sure {
		t.Error("the process that set the slow-down still skips the script")
	}
	waittest.For(t, 10*time.Second, "the slow-down's message", func() bool {
		_, sure, seen := b.QuietStats()
		return seen > seen0 && !sure
	})
}
