package worker

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/syncer"
)

// The epoch scripts: callouts are counted in the epoch they read, the handler
// closes the epoch with its count, and re-runs of older tasks keep theirs.
func TestEpochScripts(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	k := keyspace{DefaultPrefix}
	claim := func() (int64, int64) {
		v, err := claimScript.Run(ctx, rdb, []string{k.epoch("X")}, "").Int64Slice()
		if err != nil {
			t.Fatal(err)
		}
		return v[0], v[1]
	}
	adv := func(task int64, cas bool) advance {
		a, err := runAdvance(ctx, rdb, k, "X", task, cas)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for i := int64(1); i <= 3; i++ {
		if e, n := claim(); e != 0 || n != i {
			t.Fatalf("claim %d = epoch %d, count %d; want 0, %d", i, e, n, i)
		}
	}
	if a := adv(0, false); a != (advance{epoch: 1, callouts: 3, advanced: true}) {
		t.Errorf("advance(0) = %+v; want epoch 1 with 3 callouts", a)
	}
	if e, n := claim(); e != 1 || n != 1 {
		t.Errorf("claim after advance = %d, %d; want 1, 1", e, n)
	}
	// A retry of task X:0: the epoch stays, its count is remembered.
	if a := adv(0, false); a != (advance{epoch: 1, callouts: 3}) {
		t.Errorf("re-run advance(0) = %+v; want no advance, 3 callouts", a)
	}
	// Dead-task path: only the current epoch's task closes it.
	if a := adv(0, true); a.advanced {
		t.Errorf("cas advance of a stale task advanced: %+v", a)
	}
	if a := adv(1, true); a != (advance{epoch: 2, callouts: 1, advanced: true}) {
		t.Errorf("cas advance(1) = %+v; want epoch 2 with 1 callout", a)
	}
	// An older task whose count was overwritten by a later advance: unknown.
	if a := adv(0, false); a.callouts != -1 || a.advanced {
		t.Errorf("advance(0) two epochs late = %+v; want unknown count", a)
	}
	// A task ahead of the counter (the key was lost): jump past it.
	if a := adv(7, false); a.epoch != 8 || !a.advanced {
		t.Errorf("advance(7) = %+v; want epoch 8", a)
	}
}

func TestTaskIDRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id, key string
		want    int64
	}{
		{"A-S1:0", "A-S1", 0}, {"A-S1:42", "A-S1", 42}, {"a:b:3", "a:b", 3},
		{"A-S1", "A-S1", -1}, {"other:3", "A-S1", -1}, {"A-S1:x", "A-S1", -1},
	} {
		if got := epochOf(tc.id, tc.key); got != tc.want {
			t.Errorf("epochOf(%q, %q) = %d; want %d", tc.id, tc.key, got, tc.want)
		}
	}
	if id := taskID("A-S1", 9); epochOf(id, "A-S1") != 9 {
		t.Errorf("taskID/epochOf don't round-trip: %s", id)
	}
}

// A callout for a key whose sync started moments ago gets a task held back
// until the coalesce window has passed (it would only wait for the lock);
// a key never synced, or synced long ago, is not held back.
func TestCoalesceWindowHoldsBackFollowUp(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := t.Context()
	enq := NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), EnqueueConfig{CoalesceWindow: 3 * time.Second}, zap.NewNop())
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB})
	t.Cleanup(func() { _ = insp.Close() })
	trig := syncer.Trigger{Source: syncer.SourceCallout}

	state := func(id string) asynq.TaskState {
		info, err := insp.GetTaskInfo(QueueCallouts, id)
		if err != nil {
			t.Fatalf("GetTaskInfo(%s): %v", id, err)
		}
		return info.State
	}
	_, first, err := enq.Enqueue(ctx, "A-S1", trig, "")
	if err != nil {
		t.Fatal(err)
	}
	if st := state(first); st != asynq.TaskStatePending {
		t.Fatalf("first task of a never-synced key is %v; want pending", st)
	}
	// The sync of epoch 0 starts (the handler advances the epoch under the lock).
	if _, err := runAdvance(ctx, rdb, keyspace{DefaultPrefix}, "A-S1", 0, false); err != nil {
		t.Fatal(err)
	}
	_, follow, err := enq.Enqueue(ctx, "A-S1", trig, "")
	if err != nil {
		t.Fatal(err)
	}
	info, err := insp.GetTaskInfo(QueueCallouts, follow)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStateScheduled || time.Until(info.NextProcessAt) < time.Second {
		t.Fatalf("follow-up during a sync: %v at %v; want scheduled ~3s out", info.State, info.NextProcessAt)
	}
	// More callouts in the window coalesce into the held-back task.
	if st, id, _ := enq.Enqueue(ctx, "A-S1", trig, ""); st != Coalesced || id != follow {
		t.Fatalf("callout in the window: %s %s; want coalesced into %s", st, id, follow)
	}
	// A sync that started long ago holds nothing back.
	if err := rdb.HSet(ctx, keyspace{DefaultPrefix}.epoch("A-S2"), "s", time.Now().Add(-time.Hour).UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	_, old, err := enq.Enqueue(ctx, "A-S2", trig, "")
	if err != nil {
		t.Fatal(err)
	}
	if st := state(old); st != asynq.TaskStatePending {
		t.Fatalf("task for a key synced an hour ago is %v; want pending", st)
	}
}

// asynq registers a queue only on a client's first enqueue to it; after Redis
// loses its data the Enqueuer registers it again, so asynqmon sees the tasks.
func TestQueueRegisteredAgainAfterDataLoss(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	enq := NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), EnqueueConfig{}, zap.NewNop())
	if _, _, err := enq.Enqueue(ctx, "A-S1", syncer.Trigger{}, QueueBulk); err != nil {
		t.Fatal(err)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	enq.published.Store(QueueBulk, time.Now().Add(-republishEvery)) // the refresh period has passed
	if _, _, err := enq.Enqueue(ctx, "A-S2", syncer.Trigger{}, QueueBulk); err != nil {
		t.Fatal(err)
	}
	if ok, err := rdb.SIsMember(ctx, allQueuesKey, QueueBulk).Result(); err != nil || !ok {
		t.Fatalf("queue %s not registered again after data loss (err %v)", QueueBulk, err)
	}
}

// An archived task that still holds its subscription's epoch (its worker died
// on its last attempts) is released by the sweep's safety net as well as by
// the next callout (TestEnqueueAfterArchivedTask).
func TestReleaseArchivedClosesHeldEpochs(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := t.Context()
	enq := NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), EnqueueConfig{}, zap.NewNop())
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB})
	t.Cleanup(func() { _ = insp.Close() })
	trig := syncer.Trigger{Source: syncer.SourceCallout}

	_, id, err := enq.Enqueue(ctx, "A-D1", trig, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := insp.ArchiveTask(QueueCallouts, id); err != nil { // as the recoverer would, without the handler
		t.Fatal(err)
	}
	n, err := releaseArchived(ctx, rdb, keyspace{DefaultPrefix}, QueueCallouts, QueueBulk)
	if err != nil || n != 1 {
		t.Fatalf("releaseArchived = %d, %v; want 1 epoch closed", n, err)
	}
	if st, newID, _ := enq.Enqueue(ctx, "A-D1", trig, ""); st != Enqueued || newID == id {
		t.Fatalf("after the release a callout is %s (%s); want a new task", st, newID)
	}
	if n, _ := releaseArchived(ctx, rdb, keyspace{DefaultPrefix}, QueueCallouts, QueueBulk); n != 0 {
		t.Fatalf("second release closed %d epochs; want 0 (already closed)", n)
	}
}

// A callout whose epoch's task was archived (an operator in asynqmon) or
// deleted gets a task that runs; one whose task waits still coalesces.
func TestEnqueueAfterArchivedTask(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := t.Context()
	enq := NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), EnqueueConfig{}, zap.NewNop())
	insp := asynq.NewInspectorFromRedisClient(rdb)
	trig := syncer.Trigger{Source: syncer.SourceCallout}

	_, id, err := enq.Enqueue(ctx, "A-R1", trig, "")
	if err != nil {
		t.Fatal(err)
	}
	if st, same, _ := enq.Enqueue(ctx, "A-R1", trig, ""); st != Coalesced || same != id {
		t.Fatalf("callout while %s is pending: %s %s; want coalesced into it", id, st, same)
	}
	if err := insp.ArchiveTask(QueueCallouts, id); err != nil {
		t.Fatal(err)
	}
	st, next, err := enq.Enqueue(ctx, "A-R1", trig, "")
	if err != nil || st != Enqueued || next == id {
		t.Fatalf("callout after the archive: %s %s %v; want a new task", st, next, err)
	}
	// The closed epoch remembers the callouts counted in it (the reviving
	// one too: it was claimed there first), so a re-run of the archived task
	// from asynqmon knows it carries several (no loop-guard skip).
	if h, _ := rdb.HGetAll(ctx, keyspace{DefaultPrefix}.epoch("A-R1")).Result(); h["pe"] != "0" || h["pn"] != "3" || h["n"] != "1" {
		t.Errorf("epoch hash after the revive: %v; want pe 0, pn 3, n 1", h)
	}
	if err := insp.DeleteTask(QueueCallouts, next); err != nil {
		t.Fatal(err)
	}
	if st, again, err := enq.Enqueue(ctx, "A-R1", trig, ""); err != nil || st != Enqueued || again != next {
		t.Fatalf("callout after the delete: %s %s %v; want %s stored again", st, again, err, next)
	}
}

// A callout that isn't its epoch's first reads the task's state instead of
// trying an enqueue that would conflict: coalescing costs the claim and one
// read.
func TestCoalescedCalloutSkipsTheEnqueue(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	enq := NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), EnqueueConfig{}, zap.NewNop())
	trig := syncer.Trigger{Source: syncer.SourceCallout}
	_, id, err := enq.Enqueue(ctx, "A-C1", trig, "")
	if err != nil {
		t.Fatal(err)
	}
	names := &cmdNames{}
	rdb.AddHook(names)
	st, same, err := enq.Enqueue(ctx, "A-C1", trig, "")
	if err != nil || st != Coalesced || same != id {
		t.Fatalf("second callout: %s %s %v; want coalesced into %s", st, same, err, id)
	}
	if got := names.take(); len(got) != 2 || got[0] != "evalsha" || got[1] != "hget" {
		t.Errorf("second callout sent %v; want the claim script and one state read", got)
	}
}
