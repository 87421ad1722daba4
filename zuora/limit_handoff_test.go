package zuora_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/zuora"
)

// cmdCount counts the commands a client sends by name (pipelines included).
type cmdCount struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *cmdCount) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cmdCount) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.n[strings.ToUpper(cmd.Name())]++
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (c *cmdCount) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (c *cmdCount) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// acquireAsync runs Acquire in a goroutine; its result arrives on the channel.
type acquired struct {
	release func()
	err     error
}

func acquireAsync(l *zuora.TenantLimiter) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		rel, err := l.Acquire(context.Background())
		ch <- acquired{rel, err}
	}()
	return ch
}

// requestAsync is acquireAsync for a request that releases its slot as soon
// as it has it.
func requestAsync(l *zuora.TenantLimiter) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		rel, err := l.Acquire(context.Background())
		if err == nil {
			rel()
		}
		ch <- acquired{func() {}, err}
	}()
	return ch
}

// handOffOnce takes the only slot, queues a second request behind it and
// releases the first, until the release was a hand-off (a queued request
// may be polling Redis at the moment of the release, and then it finds the
// slot there, as before). It returns the second request's result and the
// first one's lease member.
func handOffOnce(t *testing.T, l *zuora.TenantLimiter, rdb redis.UniversalClient, sem string, cc *cmdCount) (acquired, string, int) {
	t.Helper()
	for range 50 {
		rel1, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		first := rdb.ZRange(context.Background(), sem, 0, -1).Val()
		if len(first) != 1 {
			t.Fatalf("leases %v; want 1", first)
		}
		second := acquireAsync(l)
		waittest.For(t, 10*time.Second, "the second request to queue", func() bool {
			w, _ := l.HandOffStats()
			return w == 1
		})
		_, passed0 := l.HandOffStats()
		zrem0 := cc.get("ZREM")
		rel1()
		got := waittest.Recv(t, 10*time.Second, "the second request's slot", second)
		if _, passed := l.HandOffStats(); passed == passed0+1 {
			return got, first[0], cc.get("ZREM") - zrem0
		}
		if got.err == nil {
			got.release()
		}
	}
	t.Fatal("no release in 50 was a hand-off")
	return acquired{}, "", 0
}

func TestLimiterHandsSlotToWaiterWithoutRelease(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	rdb := r.Client(t)
	cc := &cmdCount{n: map[string]int{}}
	rdb.AddHook(cc)
	l := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Key: "handoff", Concurrency: 1, MaxWait: 20 * time.Second})
	const sem = "{handoff}:limit:sem"

	got, firstMember, zrems := handOffOnce(t, l, rdb, sem, cc)
	if got.err != nil {
		t.Fatal(got.err)
	}
	if zrems != 0 {
		t.Errorf("%d ZREM sent at a hand-off; want none (the waiter's acquire returns the lease)", zrems)
	}
	// The waiter holds the first's lease (quiet, limit_quiet_test.go) or
	// one of its own, taken in the same script that returned the first:
	// one lease either way.
	now := rdb.ZRange(context.Background(), sem, 0, -1).Val()
	if len(now) != 1 {
		t.Errorf("leases after the hand-off %v (first was %s); want one", now, firstMember)
	}
	got.release() // nobody waits: parked, then back to Redis
	waittest.For(t, 10*time.Second, "the last lease back in Redis", func() bool {
		return rdb.ZCard(context.Background(), sem).Val() == 0
	})
}

func TestLimiterHandOffStopsAtPauseOfAnotherProcess(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	rdb := r.Client(t)
	cc := &cmdCount{n: map[string]int{}}
	rdb.AddHook(cc)
	cfg := zuora.LimitConfig{Key: "hpause", Concurrency: 1, MaxWait: 20 * time.Second}
	a := zuora.NewTenantLimiter(rdb, cfg)
	other := zuora.NewTenantLimiter(r.Client(t), cfg)
	const sem = "{hpause}:limit:sem"
	quietNow(t, a) // the hand-off would skip the script but for the pause's message
	for range 50 {
		rel1, err := a.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		second := acquireAsync(a)
		waittest.For(t, 10*time.Second, "the second request to queue", func() bool {
			w, _ := a.HandOffStats()
			return w == 1
		})
		// Zuora answers the other process with a 429: every process waits.
		_, _, seen0 := a.QuietStats()
		if err := other.Pause(context.Background(), time.Hour); err != nil {
			t.Fatal(err)
		}
		waittest.For(t, 10*time.Second, "the pause's message", func() bool {
			_, sure, seen := a.QuietStats()
			return seen > seen0 && !sure
		})
		_, passed0 := a.HandOffStats()
		rel1()
		got := waittest.Recv(t, 10*time.Second, "the second request's answer", second)
		if got.err == nil {
			t.Fatal("a request got a slot during another process's pause")
		}
		wantThrottled(t, got.err)
		if n := rdb.ZCard(context.Background(), sem).Val(); n != 0 {
			t.Fatalf("%d leases held after the refused hand-off; want 0 (returned in the same script)", n)
		}
		if _, passed := a.HandOffStats(); passed == passed0+1 {
			return
		}
		rdb.Del(context.Background(), "{hpause}:limit:pause") // the release went to Redis: again
	}
	t.Fatal("no release in 50 was a hand-off")
}

func TestLimiterHandOffSpendsBudgets(t *testing.T) {
	t.Parallel()
	// 20 an hour: a burst of 2, then one every 200 s. Every request that
	// gets a slot, handed over or not, spends one.
	a, b, r := twoProcesses(t, zuora.LimitConfig{Key: "hbudget", Concurrency: 1, PerHour: 20, MaxWait: 20 * time.Second})
	rel, err := a.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []<-chan acquired
	for range 3 {
		got = append(got, requestAsync(a), requestAsync(b))
	}
	waittest.For(t, 10*time.Second, "requests queued in both processes", func() bool {
		wa, _ := a.HandOffStats()
		wb, _ := b.HandOffStats()
		return wa == 3 && wb == 3
	})
	rel()
	var ok atomic.Int64
	ok.Add(1)
	for _, ch := range got {
		res := waittest.Recv(t, 30*time.Second, "a request's answer", ch)
		if res.err == nil {
			ok.Add(1)
		} else {
			wantThrottled(t, res.err)
		}
	}
	if n := ok.Load(); n != 2 {
		t.Fatalf("%d requests got a slot; the budget allows 2", n)
	}
	if n := r.Client(t).ZCard(context.Background(), "{hbudget}:limit:sem").Val(); n != 0 {
		t.Fatalf("%d leases held at the end; want 0", n)
	}
}

func TestLimiterHandOffChainGoesBackToRedis(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	rdb := r.Client(t)
	cc := &cmdCount{n: map[string]int{}}
	rdb.AddHook(cc)
	// A chain that is over as soon as it starts: every release goes back to
	// Redis, where every process's requests compete for it.
	l := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Key: "hchain", Concurrency: 1, MaxWait: 20 * time.Second,
		HandOffFor: time.Nanosecond})
	rel1, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second := acquireAsync(l)
	waittest.For(t, 10*time.Second, "the second request to queue", func() bool {
		w, _ := l.HandOffStats()
		return w == 1
	})
	zrem0 := cc.get("ZREM")
	rel1()
	if d := cc.get("ZREM") - zrem0; d != 1 {
		t.Errorf("%d ZREM at the release of an old chain; want 1", d)
	}
	got := waittest.Recv(t, 10*time.Second, "the second request's slot", second)
	if got.err != nil {
		t.Fatal(got.err)
	}
	got.release()
	if _, passed := l.HandOffStats(); passed != 0 {
		t.Errorf("%d hand-offs; want 0", passed)
	}
}

func TestLimiterQueuesWithoutAskingWhenItHoldsEverySlot(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	rdb := r.Client(t)
	cc := &cmdCount{n: map[string]int{}}
	rdb.AddHook(cc)
	l := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Key: "hmine", Concurrency: 1, MaxWait: 20 * time.Second, ParkFor: -1})
	quietNow(t, l)
	rel1, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	scripts0, zrem0 := cc.get("EVALSHA")+cc.get("EVAL"), cc.get("ZREM")
	second := acquireAsync(l)
	waittest.For(t, 10*time.Second, "the second request to queue", func() bool {
		w, _ := l.HandOffStats()
		return w == 1
	})
	// Its polls wait too: the only slot is this process's own.
	if n := cc.get("EVALSHA") + cc.get("EVAL") - scripts0; n != 0 {
		t.Fatalf("%d acquire scripts while this process held every slot; want 0", n)
	}
	rel1()
	got := waittest.Recv(t, 10*time.Second, "the second request's slot", second)
	if got.err != nil {
		t.Fatal(got.err)
	}
	if n := cc.get("EVALSHA") + cc.get("EVAL") - scripts0; n != 0 {
		t.Errorf("%d acquire scripts for the handed-over slot; want 0 (quiet: it passes as it is)", n)
	}
	if n := cc.get("ZREM") - zrem0; n != 0 {
		t.Errorf("%d ZREM; want 0", n)
	}
	got.release()
}
