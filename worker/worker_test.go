package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/syncer"
)

// (a) A burst of callouts for one subscription collapses to one or two syncs.
func TestBurstForOneSubscriptionCoalesces(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000001"
	burstDone := make(chan struct{})
	// A sync that starts during the burst waits for its end, so the burst
	// meets a running sync whatever the scheduling.
	e.fake.block = func(ctx context.Context, _ string, _ int) error {
		select {
		case <-burstDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.startServer(t)

	var enqueued, coalesced atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 1000 {
		wg.Go(func() {
			<-start
			e.fake.bump(key)
			st, _, err := e.enq.Enqueue(t.Context(), key, callout, QueueCallouts)
			if err != nil {
				t.Errorf("Enqueue: %v", err)
				return
			}
			switch st {
			case Enqueued:
				enqueued.Add(1)
			case Coalesced:
				coalesced.Add(1)
			default:
				t.Errorf("Enqueue status %q", st)
			}
		})
	}
	close(start)
	wg.Wait()
	close(burstDone)

	e.waitCurrent(t, 15*time.Second, key)
	z, l, syncs := e.fake.state(key)
	if syncs < 1 || syncs > 2 {
		t.Errorf("syncs = %d; want 1 or 2", syncs)
	}
	if l != z || z != 1000 {
		t.Errorf("limio = %d, zuora = %d; want both 1000", l, z)
	}
	if int(enqueued.Load()) != syncs || enqueued.Load()+coalesced.Load() != 1000 {
		t.Errorf("enqueued %d, coalesced %d; want %d tasks (one per sync) and 1000 in all",
			enqueued.Load(), coalesced.Load(), syncs)
	}
}

// (b) A callout arriving while the sync is between reading Zuora and writing
// Limio gets a task of its own, which runs after.
func TestCalloutDuringSyncGetsFollowUp(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000002"
	reached, release := make(chan struct{}), make(chan struct{})
	e.fake.block = func(ctx context.Context, _ string, n int) error {
		if n == 1 {
			close(reached)
			<-release
		}
		return nil
	}
	e.startServer(t)

	e.fake.bump(key)
	if st, id := e.enqueue(t, key, callout); st != Enqueued || id != taskID(key, 0) {
		t.Fatalf("first Enqueue = %s %s; want enqueued %s", st, id, taskID(key, 0))
	}
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the first sync never started")
	}
	if got := e.epoch(t, key); got != 1 {
		t.Errorf("epoch during the sync = %d; want 1 (moved before reading Zuora)", got)
	}
	want := e.fake.bump(key) // Zuora changes after the sync read it
	st, id := e.enqueue(t, key, callout)
	if st != Enqueued || id != taskID(key, 1) {
		t.Errorf("callout during the sync = %s %s; want enqueued %s, not coalesced into the running task", st, id, taskID(key, 1))
	}
	close(release)

	e.waitCurrent(t, 10*time.Second, key)
	if _, l, syncs := e.fake.state(key); l != want || syncs != 2 {
		t.Errorf("limio = %d after %d syncs; want %d after 2", l, syncs, want)
	}
}

// (c) An archived task doesn't block later callouts for its subscription.
func TestArchivedTaskDoesNotBlockLaterCallouts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000003"
	e.fake.failNext(key, syncer.Permanent(errors.New("invalid rate plan")))
	e.startServer(t)

	e.fake.bump(key)
	_, first := e.enqueue(t, key, callout)
	waitFor(t, 10*time.Second, "the task to be archived", func() bool { return len(e.archived(t, QueueCallouts)) == 1 })
	if got := e.archived(t, QueueCallouts)[0].ID; got != first {
		t.Errorf("archived task %s; want %s", got, first)
	}
	if r, err := e.store.Latest(t.Context(), key); err != nil || r == nil || r.Outcome != syncer.Failed || !r.Archived || r.Error == "" {
		t.Errorf("Latest = %+v, %v; want an archived failure with its error", r, err)
	}

	st, id := e.enqueue(t, key, callout)
	if st != Enqueued || id == first {
		t.Fatalf("Enqueue after archive = %s %s; want a new task", st, id)
	}
	e.waitCurrent(t, 10*time.Second, key)
	if r, err := e.store.Latest(t.Context(), key); err != nil || r == nil || r.Outcome != syncer.Updated || r.TaskID != id {
		t.Errorf("Latest = %+v, %v; want updated by %s", r, err, id)
	}
}

// A subscription the syncer found in neither system is recorded as
// not_found and its task completes (not archived: asynqmon and the
// archived-tasks alert count archived tasks as failures), whether the syncer
// said so while resolving the id (before the lock) or while syncing; its
// epoch is closed either way, so the next callout makes a new task. Any other
// 404 on the way (a Limio write, say) is archived as a failure, not taken for
// a missing subscription.
func TestNotFoundCompletesOtherFailuresArchive(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.Retention = time.Hour })
	e.startServer(t)
	http404 := &upstream.Error{API: "zuora", Op: "GET /v1/subscriptions/{key}", StatusCode: 404, Kind: upstream.NotFound}
	notFound := syncer.Permanent(fmt.Errorf("zuora sub-missing: %w (%w)", syncer.ErrNotFound, http404))
	e.fake.canonicalErr = map[string]error{"A-S00000405": fmt.Errorf("resolve: %w", syncer.ErrNotFound)}
	for _, tc := range []struct {
		key      string
		err      error
		want     syncer.Result
		archived bool
	}{
		{"sub-missing", notFound, syncer.NotFound, false},
		{"A-S00000405", nil, syncer.NotFound, false}, // not found while resolving, before the lock
		{"A-S00000404", fmt.Errorf("limio update schedule s-1: %w", &upstream.Error{API: "limio", Op: "PUT", StatusCode: 404, Kind: upstream.NotFound}), syncer.Failed, true},
	} {
		if tc.err != nil {
			e.fake.failNext(tc.key, tc.err)
		}
		_, id := e.enqueue(t, tc.key, callout)
		var info *asynq.TaskInfo
		waitFor(t, 10*time.Second, tc.key+" done", func() bool {
			info, _ = e.insp.GetTaskInfo(QueueCallouts, id)
			return info != nil && (info.State == asynq.TaskStateCompleted || info.State == asynq.TaskStateArchived)
		})
		if got := info.State == asynq.TaskStateArchived; got != tc.archived {
			t.Errorf("%s: task %s; want archived=%v", tc.key, info.State, tc.archived)
		}
		r, err := e.store.Latest(t.Context(), tc.key)
		if err != nil || r == nil || r.Outcome != tc.want || r.Archived != tc.archived {
			t.Errorf("%s: Latest = %+v, %v; want %s, archived=%v", tc.key, r, err, tc.want, tc.archived)
		}
		if strings.Contains(r.Error, "skip retry") {
			t.Errorf("%s: error %q carries asynq's suffix", tc.key, r.Error)
		}
		if e.epoch(t, tc.key) != 1 {
			t.Errorf("%s: epoch %d after the task ended; want 1 (closed)", tc.key, e.epoch(t, tc.key))
		}
		if st, next := e.enqueue(t, tc.key, callout); st != Enqueued || next == id {
			t.Errorf("%s: callout after the task: %s %s; want a new task", tc.key, st, next)
		}
	}
}

// (d) Two worker processes, many subscriptions, callouts while Zuora keeps
// changing: never two syncs of one subscription at once, all end current, and
// lock contention spends no retries.
func TestTwoServersNeverOverlapAndEndCurrent(t *testing.T) {
	t.Parallel()
	// No coalesce window: follow-ups must contend for the lock here.
	e := newTestEnv(t, func(c *Config) { c.Concurrency = 6; c.CoalesceWindow = -1 })
	e.fake.delay = func() time.Duration { return time.Duration(5+rand.N(20)) * time.Millisecond }
	m := &countingMetrics{}
	e.startServer(t, WithMetrics(m))
	e.startServer(t, WithMetrics(m))

	// Fewer subscriptions than workers, so follow-up tasks meet running syncs.
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf("A-S%08d", 100+i)
	}
	var callouts atomic.Int64
	stop := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				k := keys[rand.N(len(keys))]
				e.fake.bump(k)
				if _, _, err := e.enq.Enqueue(t.Context(), k, callout, QueueCallouts); err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				callouts.Add(1)
			}
		})
	}
	wg.Wait()
	e.waitCurrent(t, 20*time.Second, keys...)

	e.fake.mu.Lock()
	defer e.fake.mu.Unlock()
	total := 0
	for _, k := range keys {
		if m := e.fake.maxInflight[k]; m != 1 {
			t.Errorf("max concurrent syncs of %s = %d; want 1", k, m)
		}
		total += e.fake.syncs[k]
	}
	if e.fake.maxRetry != 0 {
		t.Errorf("a sync saw retry count %d; want 0 (lock waits spend no retries)", e.fake.maxRetry)
	}
	if a := e.archived(t, QueueCallouts); len(a) != 0 {
		t.Errorf("%d archived tasks; want 0", len(a))
	}
	t.Logf("%d callouts → %d syncs, %d lock waits", callouts.Load(), total, m.busy.Load())
	if m.busy.Load() == 0 {
		t.Error("no task ever waited for a lock; the test did not exercise contention")
	}
	if m.done.Load() != int64(total) {
		t.Errorf("%d recorded runs for %d syncs; want one each", m.done.Load(), total)
	}
	if int64(total) >= callouts.Load() {
		t.Errorf("%d syncs for %d callouts; want coalescing", total, callouts.Load())
	}
}

// A Limio-made callout (loop guard) runs a full sync when another callout
// coalesced into its task, and is skipped when it is alone.
func TestCoalescedCalloutDefeatsLoopGuard(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	shop := syncer.Trigger{Source: syncer.SourceCallout, OrderNumber: "O-1", OrderSource: "shop"}
	const mixed, alone = "A-S00000010", "A-S00000011"
	e.fake.bump(mixed)
	e.fake.bump(alone)
	if st, _ := e.enqueue(t, mixed, shop); st != Enqueued {
		t.Fatalf("first = %s; want enqueued", st)
	}
	if st, _ := e.enqueue(t, mixed, callout); st != Coalesced {
		t.Fatalf("second = %s; want coalesced", st)
	}
	e.enqueue(t, alone, shop)
	e.startServer(t)

	e.waitCurrent(t, 10*time.Second, mixed)
	waitFor(t, 10*time.Second, "the lone loop-guarded callout to be recorded", func() bool {
		r, err := e.store.Latest(t.Context(), alone)
		return err == nil && r != nil && r.Outcome == syncer.Skipped
	})
	e.fake.mu.Lock()
	defer e.fake.mu.Unlock()
	if got := e.fake.trigs[mixed]; len(got) != 1 || got[0] != (syncer.Trigger{Source: syncer.SourceCallout}) {
		t.Errorf("triggers for %s = %+v; want one without order fields", mixed, got)
	}
	if got := e.fake.trigs[alone]; len(got) != 1 || got[0] != shop {
		t.Errorf("triggers for %s = %+v; want the shop trigger as sent", alone, got)
	}
	if e.fake.limio[alone] != 0 {
		t.Errorf("the skipped subscription was written")
	}
}

// A task that can't get the lock and has no retries left hands its callouts
// to a successor instead of being archived.
func TestExhaustedTaskWaitingForLockHandsOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000020"
	lockKey := e.cfg.Prefix + "lock:" + key
	if err := e.rdb.Set(t.Context(), lockKey, "someone-else", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.enq.cfg.MaxRetry = 0 // this task must not wait
	e.fake.bump(key)
	_, first := e.enqueue(t, key, callout)
	e.startServer(t)

	successor := taskID(key, 1)
	waitFor(t, 10*time.Second, "a successor task", func() bool {
		_, err := e.insp.GetTaskInfo(QueueCallouts, successor)
		return err == nil
	})
	// The successor is enqueued before asynq revokes the exhausted task.
	waitFor(t, 10*time.Second, "the exhausted task gone (revoked, not archived)", func() bool {
		_, err := e.insp.GetTaskInfo(QueueCallouts, first)
		return errors.Is(err, asynq.ErrTaskNotFound)
	})
	e.rdb.Del(t.Context(), lockKey)
	e.waitCurrent(t, 10*time.Second, key)
	if a := e.archived(t, QueueCallouts); len(a) != 0 {
		t.Errorf("%d archived tasks; want 0", len(a))
	}
}

// Losing the lock mid-sync cancels the sync's context before it writes; the
// task is retried and the subscription ends current.
func TestLostLockCancelsSync(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.LockTTL = 150 * time.Millisecond })
	const key = "A-S00000030"
	lockKey := e.cfg.Prefix + "lock:" + key
	causes := make(chan error, 1)
	e.fake.block = func(ctx context.Context, _ string, n int) error {
		if n != 1 {
			return nil
		}
		// Someone else takes the lock (an expiry after a pause, say).
		if err := e.rdb.Set(context.Background(), lockKey, "thief", 300*time.Millisecond).Err(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			causes <- context.Cause(ctx)
			return context.Cause(ctx)
		case <-time.After(5 * time.Second):
			causes <- nil
			return nil
		}
	}
	e.startServer(t)
	e.fake.bump(key)
	e.enqueue(t, key, callout)
	select {
	case c := <-causes:
		if !errors.Is(c, ErrLockLost) {
			t.Fatalf("sync context cause = %v; want ErrLockLost", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sync never ran")
	}
	e.waitCurrent(t, 10*time.Second, key)
	h, err := e.store.History(t.Context(), key, 0)
	if err != nil || len(h) != 2 || h[1].Outcome != syncer.Failed || h[0].Outcome != syncer.Updated {
		t.Errorf("History = %+v, %v; want failed (lock lost) then updated", h, err)
	}
}

// Every task run is recorded exactly once; lock waits are not recorded.
func TestEachRunRecordedOnce(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.Retention = time.Minute })
	const flaky, locked = "A-S00000040", "A-S00000041"
	e.fake.failNext(flaky, &upstream.Error{API: "zuora", Op: "GET", StatusCode: 503, Kind: upstream.Retryable})
	// Held by another run for a while: the task waits without a record.
	if err := e.rdb.Set(t.Context(), e.cfg.Prefix+"lock:"+locked, "other", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	e.fake.bump(flaky)
	e.fake.bump(locked)
	e.enqueue(t, flaky, callout)
	_, lockedID := e.enqueue(t, locked, callout)
	e.startServer(t)
	e.waitCurrent(t, 10*time.Second, flaky, locked)

	stream, err := e.store.Stream(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for i := len(stream) - 1; i >= 0; i-- {
		r := stream[i]
		got[r.Subscription] = append(got[r.Subscription], fmt.Sprintf("%d:%s", r.Attempt, r.Outcome))
	}
	if fmt.Sprint(got[flaky]) != "[0:failed 1:updated]" {
		t.Errorf("records of %s = %v; want [0:failed 1:updated]", flaky, got[flaky])
	}
	if fmt.Sprint(got[locked]) != "[0:updated]" {
		t.Errorf("records of %s = %v; want [0:updated] (lock waits unrecorded)", locked, got[locked])
	}
	_, _, syncs := e.fake.state(flaky)
	if syncs != len(got[flaky]) {
		t.Errorf("%d syncs of %s, %d records; want equal", syncs, flaky, len(got[flaky]))
	}
	// asynqmon shows the record's summary as the task's result.
	info, err := e.insp.GetTaskInfo(QueueCallouts, lockedID)
	if err != nil {
		t.Fatalf("GetTaskInfo: %v", err)
	}
	var r taskResult
	if err := json.Unmarshal(info.Result, &r); err != nil || r.Outcome != syncer.Updated || r.Subscription != locked {
		t.Errorf("task result = %s (%v); want the record's summary", info.Result, err)
	}
}

// Shutdown lets a running sync finish and record.
func TestShutdownWaitsForRunningSync(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000050"
	started := make(chan struct{})
	e.fake.block = func(ctx context.Context, _ string, _ int) error {
		close(started)
		select {
		case <-time.After(300 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	srv := e.startServer(t)
	e.fake.bump(key)
	e.enqueue(t, key, callout)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("sync never started")
	}
	srv.Shutdown()
	if z, l, _ := e.fake.state(key); z != l {
		t.Errorf("after Shutdown limio = %d, zuora = %d; want the running sync finished", l, z)
	}
	if r, err := e.store.Latest(t.Context(), key); err != nil || r == nil || r.Outcome != syncer.Updated {
		t.Errorf("Latest = %+v, %v; want updated", r, err)
	}
}

func TestEnqueueRejectsBadKeysAndReportsRedisDown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	for _, k := range []string{"", "a{b}", "with space", string(make([]byte, 300))} {
		if _, _, err := e.enq.Enqueue(t.Context(), k, callout, ""); !errors.Is(err, errInvalidKey) {
			t.Errorf("Enqueue(%q) error = %v; want errInvalidKey", k, err)
		}
	}
	e.rs.Stop()
	if st, _, err := e.enq.Enqueue(t.Context(), "A-S1", callout, ""); err == nil {
		t.Errorf("Enqueue with Redis down = %s, nil; want an error", st)
	}
}

// Syncs requested under two ids of one subscription (its Zuora number and
// its Limio id) share the lock: the second waits for the first.
func TestIDFormsShareTheLock(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	e.fake.canonical = map[string]string{"sub-x0000001": "A-X1"}
	started, release := make(chan struct{}), make(chan struct{})
	e.fake.block = func(ctx context.Context, key string, n int) error {
		if key == "A-X1" && n == 1 {
			close(started)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	m := &countingMetrics{}
	e.startServer(t, WithMetrics(m))
	ctx := t.Context()
	if _, _, err := e.enq.Enqueue(ctx, "A-X1", syncer.Trigger{Source: syncer.SourceCallout}, ""); err != nil {
		t.Fatal(err)
	}
	waittest.Recv(t, 10*time.Second, "the Zuora number's sync to start", started)
	if _, _, err := e.enq.Enqueue(ctx, "sub-x0000001", syncer.Trigger{Source: syncer.SourceManual}, ""); err != nil {
		t.Fatal(err)
	}
	// The signal that the second task ran and met the lock: it was put back.
	waitFor(t, 10*time.Second, "the Limio-id task to find the lock busy twice", func() bool { return m.busy.Load() >= 2 })
	if _, _, n := e.fake.state("sub-x0000001"); n != 0 {
		t.Fatalf("sync by Limio id ran while the Zuora number's sync held the subscription (%d syncs)", n)
	}
	close(release)
	waitFor(t, 10*time.Second, "the Limio-id sync after the lock is free", func() bool {
		_, _, n := e.fake.state("sub-x0000001")
		return n == 1
	})
}

// A task whose next attempt is its last closes its epoch as soon as that
// attempt is scheduled: should the attempt die with its worker before it
// reaches the lock, the recoverer archives it without the handler, and an
// open epoch would let the archived task swallow later callouts.
func TestEpochClosedBeforeTheLastAttempt(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.MaxRetry = 1; c.RetryBase = 5 * time.Second; c.RetryCap = 5 * time.Second })
	e.fake.canonicalErr = map[string]error{"A-C1": &upstream.Error{API: "limio", Kind: upstream.Retryable, Message: "flaky"}}
	// The retry delay is jittered down to nothing at times, and the last
	// attempt closes the epoch itself: hold it before that, so only the
	// first attempt can have closed the epoch.
	hold := &holdLastAttempt{release: make(chan struct{})}
	e.rdb.AddHook(hold)
	e.startServer(t)
	t.Cleanup(func() { close(hold.release) }) // before the server's shutdown
	e.enqueue(t, "A-C1", syncer.Trigger{Source: syncer.SourceCallout})
	waitFor(t, 10*time.Second, "the first attempt to fail before reaching the lock", func() bool {
		r, _ := e.store.Latest(t.Context(), "A-C1")
		return r != nil && r.Outcome == syncer.Failed
	})
	// The run is recorded before asynq calls the error handler that closes
	// the epoch: wait for the close itself (it never comes if the handler
	// leaves the epoch open for the last attempt).
	waitFor(t, 10*time.Second, "the epoch closed while the last attempt waits", func() bool { return e.epoch(t, "A-C1") == 1 })
	if st, _ := e.enqueue(t, "A-C1", syncer.Trigger{Source: syncer.SourceCallout}); st != Enqueued {
		t.Fatalf("a callout during the wait was %s; want enqueued as a new task", st)
	}
}

// holdLastAttempt holds the first epoch advance made by a task's retry (the
// last attempt, with MaxRetry 1) until release is closed.
type holdLastAttempt struct {
	held    atomic.Bool
	release chan struct{}
}

func (*holdLastAttempt) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *holdLastAttempt) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		retried, _ := asynq.GetRetryCount(ctx)
		if args := cmd.Args(); retried > 0 && len(args) > 1 && args[1] == advanceScript.Hash() && h.held.CompareAndSwap(false, true) {
			<-h.release
		}
		return next(ctx, cmd)
	}
}
func (*holdLastAttempt) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A throttle on a task's last attempt is not a failure: the task hands off to
// a successor instead of being archived.
func TestThrottleOnLastAttemptHandsOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.MaxRetry = 1 })
	const key = "A-T1"
	e.fake.bump(key)
	e.fake.failNext(key,
		&upstream.Error{API: "zuora", Kind: upstream.Retryable, Message: "flaky"},                  // spends the one retry
		&upstream.Error{API: "zuora", Kind: upstream.Throttled, RetryAfter: 10 * time.Millisecond}) // on the last attempt
	e.startServer(t)
	e.enqueue(t, key, syncer.Trigger{Source: syncer.SourceCallout})
	e.waitCurrent(t, 15*time.Second, key)
	if a := e.archived(t, QueueCallouts); len(a) != 0 {
		t.Fatalf("archived %d tasks; want none (a throttle is not a failure)", len(a))
	}
	if _, _, n := e.fake.state(key); n != 3 {
		t.Fatalf("syncs = %d; want 3 (failed, throttled, then the successor)", n)
	}
}

// A sync cut off by shutdown goes back to the queue: it is recorded failed
// but not archived, even on its last attempt.
func TestShutdownRequeuesWithoutArchiving(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.MaxRetry = 1; c.ShutdownTimeout = 300 * time.Millisecond })
	const key = "A-Q1"
	e.fake.failNext(key, &upstream.Error{API: "zuora", Kind: upstream.Retryable, Message: "flaky"}) // the last attempt follows
	entered := make(chan struct{})
	var once sync.Once
	e.fake.block = func(ctx context.Context, _ string, _ int) error {
		once.Do(func() { close(entered) })
		<-ctx.Done()
		return ctx.Err()
	}
	srv := e.startServer(t)
	_, id := e.enqueue(t, key, syncer.Trigger{Source: syncer.SourceCallout})
	<-entered
	srv.Shutdown()
	var r *Record
	waitFor(t, 5*time.Second, "the cut-off run's record", func() bool {
		r, _ = e.store.Latest(t.Context(), key)
		return r != nil && r.Attempt == 1
	})
	if r.Outcome != syncer.Failed || r.Archived {
		t.Fatalf("record = %s archived=%v; want failed, not archived", r.Outcome, r.Archived)
	}
	info, err := e.insp.GetTaskInfo(QueueCallouts, id)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task after shutdown: %v %v; want pending (back in the queue)", info, err)
	}
}

// failClaims makes every epoch claim on rdb fail, as a Redis error would.
type failClaims struct{}

func (failClaims) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failClaims) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) > 1 && args[1] == claimScript.Hash() {
			cmd.SetErr(errors.New("injected: claim failed"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (failClaims) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A task waiting for the lock on its last attempt whose hand-off fails (the
// successor can't be enqueued) is archived by asynq: that is recorded as a
// failed, archived outcome, not dropped as a lock wait, so it can be seen and
// run again.
func TestFailedHandOffIsRecorded(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000021"
	if err := e.rdb.Set(t.Context(), e.cfg.Prefix+"lock:"+key, "someone-else", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.enq.cfg.MaxRetry = 0 // this task must not wait
	e.fake.bump(key)
	_, first := e.enqueue(t, key, callout)
	e.rdb.AddHook(failClaims{})
	e.startServer(t)

	waitFor(t, 10*time.Second, "the task archived", func() bool { return len(e.archived(t, QueueCallouts)) == 1 })
	var rec *Record
	waitFor(t, 10*time.Second, "an outcome recorded", func() bool {
		r, err := e.store.Latest(t.Context(), key)
		rec = r
		return err == nil && r != nil
	})
	if rec.Outcome != syncer.Failed || !rec.Archived || rec.TaskID != first || !strings.Contains(rec.Error, "hand off") {
		t.Fatalf("recorded %+v; want failed, archived, task %s, a hand-off error", rec, first)
	}
}

// A payload with a field this worker doesn't know (a newer ingress during a
// rolling upgrade) still syncs; one that can't be read at all is archived,
// recorded under the key its task id names, and closes its epoch, so later
// callouts for the subscription make a new task instead of coalescing into
// the dead one.
func TestUnreadablePayloadDoesNotBlockTheSubscription(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const newer, broken = "A-S00000777", "A-S00000778"
	client := asynq.NewClient(e.opt)
	t.Cleanup(func() { _ = client.Close() })
	enqueueRaw := func(key, payload string) {
		t.Helper()
		// Claimed as a callout would be, then stored with the given payload.
		if _, err := e.enq.claims.claim(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(asynq.NewTask(taskTypeSync, []byte(payload)), asynq.TaskID(key+":0"),
			asynq.Queue(QueueCallouts), asynq.MaxRetry(3)); err != nil {
			t.Fatal(err)
		}
	}
	e.fake.bump(newer)
	e.fake.bump(broken)
	enqueueRaw(newer, `{"key":"`+newer+`","trigger":{"source":"callout"},"added_later":{"x":1}}`)
	enqueueRaw(broken, `{"key": 42`)
	e.startServer(t)

	waitFor(t, 10*time.Second, "the broken task archived", func() bool { return len(e.archived(t, QueueCallouts)) == 1 })
	if z, l, _ := e.fake.state(newer); z != l {
		waitFor(t, 10*time.Second, "the newer payload synced", func() bool { z, l, _ := e.fake.state(newer); return z == l })
	}
	if r, err := e.store.Latest(t.Context(), broken); err != nil || r == nil || r.Outcome != syncer.Failed || !r.Archived {
		t.Errorf("broken task recorded as %+v, %v; want failed, archived, under %s", r, err, broken)
	}
	st, id := e.enqueue(t, broken, callout)
	if st != Enqueued || id == broken+":0" || id == taskID(broken, 0) {
		t.Fatalf("callout after the broken task: %s %s; want a new task", st, id)
	}
	e.waitCurrent(t, 10*time.Second, broken)
}

// A 401 that survived the token refresh (credentials rotating) is retried
// with backoff, recorded as a failure each time; a task still refused on
// its third attempt is archived then, with retries left, its epoch closed.
func TestUnauthorizedTriedAFewTimesThenArchived(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.MaxRetry = 10 })
	e.startServer(t)
	refused := func() error {
		return fmt.Errorf("limio get subscription: %w", &upstream.Error{API: "limio", Op: "GET /objects/limio/subscriptions/{id}",
			StatusCode: 401, Kind: upstream.Unauthorized, Message: "unauthorized (check client id and secret)"})
	}
	const cured, never = "A-S00000411", "A-S00000412"
	e.fake.failNext(cured, refused(), refused())
	e.fake.failNext(never, refused(), refused(), refused(), refused())
	e.fake.bump(cured)
	e.fake.bump(never)
	_, curedID := e.enqueue(t, cured, callout)
	_, neverID := e.enqueue(t, never, callout)

	e.waitCurrent(t, 20*time.Second, cured)
	waitFor(t, 20*time.Second, never+" archived", func() bool {
		info, _ := e.insp.GetTaskInfo(QueueCallouts, neverID)
		return info != nil && info.State == asynq.TaskStateArchived
	})
	for _, tc := range []struct {
		key, id string
		want    []syncer.Result // oldest first
	}{
		{cured, curedID, []syncer.Result{syncer.Failed, syncer.Failed, syncer.Updated}},
		{never, neverID, []syncer.Result{syncer.Failed, syncer.Failed, syncer.Failed}},
	} {
		hist, err := e.store.History(t.Context(), tc.key, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []syncer.Result
		for k := len(hist) - 1; k >= 0; k-- {
			r := hist[k]
			got = append(got, r.Outcome)
			wantArchived := tc.key == never && k == 0
			if r.TaskID != tc.id || r.Attempt != len(hist)-1-k || r.Archived != wantArchived {
				t.Errorf("%s: record %+v; want task %s attempt %d archived=%v", tc.key, r, tc.id, len(hist)-1-k, wantArchived)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: outcomes %v; want %v", tc.key, got, tc.want)
		}
	}
	if _, _, n := e.fake.state(never); n != authAttempts {
		t.Errorf("%s synced %d times; want %d (archived with retries left)", never, n, authAttempts)
	}
	if e.epoch(t, never) != 1 {
		t.Errorf("%s: epoch %d after archiving; want 1 (closed)", never, e.epoch(t, never))
	}
}
