package zuora_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/zuora"
)

// parkLimiter is a one-slot limiter whose client counts its commands.
func parkLimiter(t *testing.T, key string, parkFor time.Duration) (*zuora.TenantLimiter, redis.UniversalClient, *cmdCount, *redistest.Server) {
	t.Helper()
	r := redistest.Start(t)
	rdb := r.Client(t)
	cc := &cmdCount{n: map[string]int{}}
	rdb.AddHook(cc)
	l := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Key: key, Concurrency: 1, MaxWait: 2 * time.Second, ParkFor: parkFor})
	t.Cleanup(func() { _ = l.Close() })
	return l, rdb, cc, r
}

func TestLimiterParkedLeaseTakenByNextRequest(t *testing.T) {
	t.Parallel()
	// Parked for longer than the test: the next request must find it.
	l, rdb, cc, _ := parkLimiter(t, "park", time.Hour)
	const sem = "{park}:limit:sem"
	quietNow(t, l) // leaves its lease parked
	rel1, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first := rdb.ZRange(context.Background(), sem, 0, -1).Val()
	scripts0 := cc.get("EVALSHA") + cc.get("EVAL")
	_, taken0, _ := l.ParkStats()
	rel1() // nobody waits
	if n := cc.get("ZREM"); n != 0 {
		t.Fatalf("%d ZREM at a release with parking on; want none", n)
	}
	if parked, _, _ := l.ParkStats(); parked != 1 {
		t.Fatalf("%d leases parked; want 1", parked)
	}
	// Every slot is this process's, parked: the next request takes it
	// without queueing for a hand-off, and as it is, as nothing changed
	// since a script found the shared state clear (limit_quiet.go).
	rel2, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := cc.get("EVALSHA") + cc.get("EVAL") - scripts0; n != 0 {
		t.Errorf("%d acquire scripts for the parked slot; want none (quiet)", n)
	}
	if n := cc.get("ZREM"); n != 0 {
		t.Errorf("%d ZREM; want none", n)
	}
	if parked, taken, _ := l.ParkStats(); parked != 0 || taken != taken0+1 {
		t.Errorf("parked %d, taken %d; want 0, %d", parked, taken, taken0+1)
	}
	now := rdb.ZRange(context.Background(), sem, 0, -1).Val()
	if len(first) != 1 || len(now) != 1 || now[0] != first[0] {
		t.Errorf("leases %v after taking the parked %v; want the same", now, first)
	}
	rel2()
	// Close returns what is parked at once.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rdb.ZCard(context.Background(), sem).Val(); n != 0 {
		t.Errorf("%d leases after Close; want 0", n)
	}
	if n := cc.get("ZREM"); n != 1 {
		t.Errorf("%d ZREM at Close; want 1", n)
	}
}

func TestLimiterParkedLeaseGoesBackWhenNobodyTakesIt(t *testing.T) {
	t.Parallel()
	l, rdb, cc, _ := parkLimiter(t, "parkend", 10*time.Millisecond)
	const sem = "{parkend}:limit:sem"
	rel, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rel()
	waittest.For(t, 10*time.Second, "the parked lease back in Redis", func() bool {
		return rdb.ZCard(context.Background(), sem).Val() == 0
	})
	if n := cc.get("ZREM"); n != 1 {
		t.Errorf("%d ZREM; want 1 (the park time's end)", n)
	}
	if parked, taken, ended := l.ParkStats(); parked != 0 || taken != 0 || ended != 1 {
		t.Errorf("parked %d, taken %d, ended %d; want 0, 0, 1 (parked, then its time ran out)", parked, taken, ended)
	}
	// The slot no longer counts as this process's: the next request asks
	// Redis and gets it.
	rel, err = l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rel()
}

func TestLimiterParkedLeaseStopsAtPauseOfAnotherProcess(t *testing.T) {
	t.Parallel()
	l, rdb, cc, r := parkLimiter(t, "parkpause", time.Hour)
	const sem = "{parkpause}:limit:sem"
	other := zuora.NewTenantLimiter(r.Client(t), zuora.LimitConfig{Key: "parkpause", Concurrency: 1})
	quietNow(t, l) // leaves its lease parked, to be taken as it is but for the pause
	_, taken0, _ := l.ParkStats()
	_, _, seen0 := l.QuietStats()
	// Zuora answers the other process with a 429: every process waits.
	if err := other.Pause(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, 10*time.Second, "the pause's message", func() bool {
		_, _, seen := l.QuietStats()
		return seen > seen0
	})
	if _, err := l.Acquire(context.Background()); err == nil {
		t.Fatal("a request took a parked slot during another process's pause")
	} else {
		wantThrottled(t, err)
	}
	if _, taken, _ := l.ParkStats(); taken != taken0+1 {
		t.Fatalf("%d parked leases taken; want %d", taken-taken0, 1)
	}
	if n := rdb.ZCard(context.Background(), sem).Val(); n != 0 {
		t.Errorf("%d leases after the refused request; want 0 (returned in its script)", n)
	}
	if n := cc.get("ZREM"); n != 0 {
		t.Errorf("%d ZREM; want none", n)
	}
	// The slot is no longer this process's: after the pause the next
	// request asks Redis rather than queueing for a slot nobody holds.
	rdb.Del(context.Background(), "{parkpause}:limit:pause")
	rel, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rel()
}

func TestLimiterParkingOff(t *testing.T) {
	t.Parallel()
	l, rdb, cc, _ := parkLimiter(t, "parkoff", -1)
	rel, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rel()
	if n := cc.get("ZREM"); n != 1 {
		t.Errorf("%d ZREM at a release with parking off; want 1", n)
	}
	if n := rdb.ZCard(context.Background(), "{parkoff}:limit:sem").Val(); n != 0 {
		t.Errorf("%d leases after the release; want 0", n)
	}
	if parked, _, _ := l.ParkStats(); parked != 0 {
		t.Errorf("%d leases parked; want 0", parked)
	}
}

func TestLimitConfigParkFor(t *testing.T) {
	if got := (zuora.LimitConfig{}).WithDefaults().ParkFor; got != 5*time.Millisecond {
		t.Errorf("default ParkFor %s; want 5ms", got)
	}
	if got := (zuora.LimitConfig{ParkFor: -1}).WithDefaults().ParkFor; got >= 0 {
		t.Errorf("ParkFor -1 became %s; want it kept negative (off)", got)
	}
	err := zuora.LimitConfig{ParkFor: 2 * time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "ParkFor") {
		t.Errorf("Validate(ParkFor 2s) = %v; want an error naming ParkFor", err)
	}
}

// A client's Close gives its limiter's parked lease back: a process that
// exits after its last request leaves no slot leased.
func TestClientCloseReturnsParkedLease(t *testing.T) {
	t.Parallel()
	l, rdb, _, _ := parkLimiter(t, "parkclient", time.Hour)
	srv := contractServer(t)
	c, err := zuora.New(srv.Config(), zuora.WithHTTPClient(contractHTTP(t, nil)), zuora.WithLimiter(l))
	if err != nil {
		t.Fatal(err)
	}
	// Any answer will do (this one is a 404): the request held a slot.
	_, _ = c.GetSubscription(context.Background(), "A-S00000101")
	if srv.Count("", "/v1/") != 1 {
		t.Fatal("the request didn't reach Zuora")
	}
	const sem = "{parkclient}:limit:sem"
	if n := rdb.ZCard(context.Background(), sem).Val(); n != 1 {
		t.Fatalf("%d leases after the request; want its parked one", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rdb.ZCard(context.Background(), sem).Val(); n != 0 {
		t.Errorf("%d leases after Close; want 0", n)
	}
}

// cancelOnScript cancels a request's context as its acquire script goes
// out: the request gives up while the script is in flight.
type cancelOnScript struct {
	mu     sync.Mutex
	cancel context.CancelFunc
}

func (c *cancelOnScript) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cancelOnScript) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		if n := strings.ToUpper(cmd.Name()); c.cancel != nil && (n == "EVALSHA" || n == "EVAL") {
			c.cancel()
			c.cancel = nil
		}
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (c *cancelOnScript) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A request that gives up while its acquire script is in flight, with a
// parked lease to return, leaves no lease behind in Redis: the script runs
// to its end whatever the request does, and what it took is passed on (here
// parked, then given back by Close). A lease left behind would keep a tenant
// slot from every process until Lease runs out.
func TestLimiterCancelledAcquireLeavesNoLease(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	rdb := r.Client(t)
	hook := &cancelOnScript{}
	rdb.AddHook(hook)
	// A budget: every take runs the script (no quiet hand-off).
	l := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Key: "parkcancel", Concurrency: 1, PerMinute: 100000,
		MaxWait: 2 * time.Second, ParkFor: time.Hour})
	t.Cleanup(func() { _ = l.Close() })
	const sem = "{parkcancel}:limit:sem"
	rel, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rel() // parked
	ctx, cancel := context.WithCancel(context.Background())
	hook.mu.Lock()
	hook.cancel = cancel
	hook.mu.Unlock()
	if _, err := l.Acquire(ctx); err == nil {
		t.Fatal("Acquire with its context cancelled under it succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if m := rdb.ZRange(context.Background(), sem, 0, -1).Val(); len(m) != 0 {
		t.Errorf("leases left in Redis after the cancelled request and Close: %v; want none", m)
	}
}
