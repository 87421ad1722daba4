package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/redistest"
)

// Concurrent claims share pipelines yet each is counted once, in order.
func TestClaimerCountsEveryClaim(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	cl := newClaimer(rdb, keyspace{DefaultPrefix})
	const n = 1000
	seen := make([]bool, n+1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "A-X"
			if i%2 == 1 {
				key = "A-Y"
			}
			c, err := cl.claim(t.Context(), key)
			if err != nil {
				t.Errorf("claim: %v", err)
				return
			}
			if key == "A-X" {
				mu.Lock()
				if c.callouts < 1 || c.callouts > n || seen[c.callouts] {
					t.Errorf("count %d out of range or seen twice", c.callouts)
				} else {
					seen[c.callouts] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, key := range []string{"A-X", "A-Y"} {
		if got, err := rdb.HGet(t.Context(), keyspace{DefaultPrefix}.epoch(key), "n").Int(); err != nil || got != n/2 {
			t.Errorf("%s counted %d claims (err %v); want %d", key, got, err, n/2)
		}
	}
}

// With Redis gone every waiting claim gets an error; none hangs.
func TestClaimerFailsWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	cl := newClaimer(rdb, keyspace{DefaultPrefix})
	rs.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.claim(ctx, "A-X"); err == nil {
				t.Error("claim succeeded with Redis down")
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("claims hung instead of failing")
	}
}

// The claimer answers what claimScript run on its own answers, through
// advances: the same epoch, the same count, and the time since the last sync
// started (none before the first).
func TestClaimerAgreesWithClaimScript(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	k := keyspace{DefaultPrefix}
	cl := newClaimer(rdb, k)
	ctx := t.Context()
	// Each since must lie between what the local clock saw around the
	// advances and the claims (Redis TIME in ms, so 2 ms of slack): a
	// bracket, not a tolerance that a preempted goroutine would break.
	var advStart, advEnd time.Time
	const slack = 2 * time.Millisecond
	for step := range 6 {
		for range step + 1 {
			claimStart := time.Now()
			got, err := cl.claim(ctx, "A-TX")
			if err != nil {
				t.Fatal(err)
			}
			v, err := claimScript.Run(ctx, rdb, []string{k.epoch("A-SCRIPT")}, "").Int64Slice()
			want, err := parseClaim("A-SCRIPT", v, err)
			if err != nil {
				t.Fatal(err)
			}
			if got.epoch != want.epoch || got.callouts != want.callouts {
				t.Fatalf("step %d: claimer %+v, script %+v", step, got, want)
			}
			lo, hi := claimStart.Sub(advEnd)-slack, time.Since(advStart)+slack
			if (got.since < 0) != (want.since < 0) || step > 0 && (got.since < lo || got.since > hi || want.since < lo || want.since > hi) {
				t.Fatalf("step %d: since: claimer %v, script %v; want both in [%v, %v]", step, got.since, want.since, lo, hi)
			}
			if step == 0 && got.since >= 0 {
				t.Fatalf("a key never synced has since %v; want none", got.since)
			}
		}
		advStart = time.Now()
		for _, key := range []string{"A-TX", "A-SCRIPT"} {
			if _, err := runAdvance(ctx, rdb, k, key, int64(step), false); err != nil {
				t.Fatal(err)
			}
		}
		advEnd = time.Now()
		time.Sleep(20 * time.Millisecond) // not a wait: gives since something to measure
	}
	if c, _ := cl.claim(ctx, "A-TX"); c.epoch != 6 || c.since < 20*time.Millisecond {
		t.Fatalf("after 6 advances: %+v; want epoch 6, since ≥ 20ms", c)
	}
}

// A batch whose script is not cached (first use, or SCRIPT FLUSH) is claimed
// all the same, each key once, with its job registered once.
func TestClaimManyAfterScriptFlush(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	k := keyspace{DefaultPrefix}
	cl := newClaimer(rdb, k)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	reqs := []claimReq{{key: "A-F1", job: "j1"}, {key: "A-F2", job: "j1"}, {key: "A-F1", job: "j1"}}
	res := cl.claimMany(ctx, reqs)
	for i, want := range []int64{1, 1, 2} {
		if res[i].err != nil || res[i].c.callouts != want {
			t.Errorf("claim %d = %+v; want %d callouts", i, res[i], want)
		}
	}
	counts, err := takeJobs(ctx, rdb, k, "A-F1", 0)
	if err != nil || counts["j1"] != 2 || len(counts) != 1 {
		t.Fatalf("jobs on A-F1 = %v, %v; want j1: 2", counts, err)
	}
}

// A registration put back is the one a claim makes: the next take finds it,
// and nothing else is left in the hash.
func TestPutBackJobRestoresTheClaimsRegistration(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	k := keyspace{DefaultPrefix}
	cl := newClaimer(rdb, k)
	res := cl.claimMany(ctx, []claimReq{{key: "A-P1", job: "rs-1"}, {key: "A-P1", job: "rs-1"}})
	if res[0].err != nil || res[1].err != nil {
		t.Fatal(res)
	}
	before, err := rdb.HGetAll(ctx, k.epoch("A-P1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	counts, err := takeJobs(ctx, rdb, k, "A-P1", 0)
	if err != nil || counts["rs-1"] != 2 {
		t.Fatalf("take = %v, %v; want rs-1: 2", counts, err)
	}
	if err := putBackJob(ctx, rdb, k, "A-P1", 0, "rs-1", 2); err != nil {
		t.Fatal(err)
	}
	after, err := rdb.HGetAll(ctx, k.epoch("A-P1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("hash after put-back %v; want as claimed %v", after, before)
	}
	for f, v := range before {
		if after[f] != v {
			t.Fatalf("hash after put-back %v; want as claimed %v", after, before)
		}
	}
}

// On a single Redis the lock and the advance are one script: the epoch
// closes only for the run that got the lock, and in the round trip that
// took it. A busy lock advances nothing (the task keeps coalescing).
func TestLockAndAdvanceOneRoundTrip(t *testing.T) {
	t.Parallel()
	rdb, names := namedClient(t)
	k := keyspace{DefaultPrefix}
	ctx := t.Context()
	if err := lockAdvanceScript.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	names.take()

	l, adv, err := lockAndAdvance(ctx, rdb, k, "A-S1", "sub-1", 0, time.Minute)
	if err != nil || l == nil || !adv.advanced || adv.epoch != 1 {
		t.Fatalf("lockAndAdvance = %v, %+v, %v; want the lock and epoch 0 closed", l, adv, err)
	}
	if got := names.take(); len(got) != 1 {
		t.Errorf("sent %v; want one script", got)
	}
	if v, err := rdb.Get(ctx, k.lock("A-S1")).Result(); err != nil || v != l.token {
		t.Errorf("lock = %q, %v; want our token", v, err)
	}

	// Someone else's lock: no lock, and epoch 1 stays open.
	other, adv, err := lockAndAdvance(ctx, rdb, k, "A-S1", "sub-1", 1, time.Minute)
	if err != nil || other != nil {
		t.Fatalf("lockAndAdvance on a held lock = %v, %+v, %v; want no lock", other, adv, err)
	}
	if e, err := rdb.HGet(ctx, k.epoch("sub-1"), "e").Int64(); err != nil || e != 1 {
		t.Errorf("epoch after a busy lock = %d, %v; want 1 (not advanced)", e, err)
	}
}
