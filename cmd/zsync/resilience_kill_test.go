package main

import (
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// TestResilienceWorkerKilledMidSync: a `zsync work` process is SIGKILLed
// while its syncs are writing to Limio (a PUT in flight). A second worker
// process finishes the job once asynq's recoverer hands the orphaned tasks
// back (their lease expires 30 s after the last heartbeat and the recoverer
// waits another 30 s for clock skew, polling each minute: ~60 s that no zsync
// setting shortens). Limio ends exactly as a clean sync leaves it, with no
// duplicate schedule entries.
func TestResilienceWorkerKilledMidSync(t *testing.T) {
	slowTests(t)
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	zs, ls := zuoratest.NewServer(t), limiotest.NewServer(t)
	c := testConfig(t, rs, zs, ls)

	// Four subscriptions already in Limio, then changed in Zuora: a price
	// change (every schedule entry rewritten), a cancellation, a contact
	// edit, a renewal (new schedule entries).
	before := initialState()
	after := map[int]subState{}
	for i, change := range []func(*subState){
		func(s *subState) { s.Price = "27.50" },
		func(s *subState) { s.Cancelled = true },
		func(s *subState) { s.City = "Edinburgh" },
		func(s *subState) { s.Months = 8 },
	} {
		st := before
		st.Rev = 1
		change(&st)
		after[i] = st
	}
	states := map[int][]subState{}
	for i := range after {
		states[i] = []subState{before, after[i]}
	}
	want := reference(t, states)

	s := newTestSyncer(t, c, rdb, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	for i := range after {
		putSub(t, zs, i, before)
		if _, err := s.Sync(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceManual}); err != nil {
			t.Fatalf("initial sync of %s: %v", subNumber(i), err)
		}
		putSub(t, zs, i, after[i])
	}

	// Every Limio write takes a second, so the kill lands mid-sync.
	putsBefore := ls.Count(http.MethodPut, "/api/")
	ls.AddFault(sandbox.Fault{Method: http.MethodPut, Path: "/api/", LatencyMS: 1000})
	env := upstreamEnv(rs, zs, ls, "ZSYNC_WORKER_CONCURRENCY=4", "ZSYNC_WORKER_TIMEOUT=10s", "ZSYNC_WORKER_LOCK_TTL=3s")
	w1 := startProc(t, "work#1", env, "work")
	enq := testEnqueuer(t, c, rdb)
	for i := range after {
		if _, _, err := enq.Enqueue(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceCallout, EventType: "SubscriptionUpdated"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "a Limio PUT from worker #1", func() bool { return ls.Count(http.MethodPut, "/api/") > putsBefore })
	w1.kill() // SIGKILL
	killedAt := time.Now()
	ls.ClearFaults()

	in := inspector(t, rs)
	active, err := in.ListActiveTasks(worker.QueueCallouts)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) == 0 {
		t.Fatal("no task left active by the killed worker: the kill did not land mid-sync")
	}
	if _, n := diffStates(t, ls, want); n == 0 {
		t.Fatal("every subscription already synced before the kill: nothing left to recover")
	}
	t.Logf("killed worker #1 with %d tasks active, %d Limio PUTs sent", len(active), ls.Count(http.MethodPut, "/api/")-putsBefore)

	startProc(t, "work#2", env, "work")
	converged(t, ls, want, 150*time.Second)
	t.Logf("converged %v after the kill", time.Since(killedAt).Round(time.Second))

	for i := range after {
		if d := duplicateRefs(ls, i); len(d) > 0 {
			t.Errorf("%s: duplicate non-cancelled schedule entries %v", subNumber(i), d)
		}
	}
	eventually(t, 10*time.Second, "the queue to drain", func() bool {
		q := queueCounts(t, in, worker.QueueCallouts)
		return q.Active == 0 && q.Pending == 0 && q.Retry == 0
	})
	if q := queueCounts(t, in, worker.QueueCallouts); q.Archived != 0 {
		t.Errorf("archived tasks: %d; want 0", q.Archived)
	}
	// A sync that starts after the recovery writes nothing more.
	writes := countWrites(ls)
	for i := range after {
		if _, _, err := enq.Enqueue(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceManual}, ""); err != nil {
			t.Fatal(err)
		}
	}
	store := worker.NewOutcomeStore(rdb, workerConfig(c).StoreConfig())
	eventually(t, 20*time.Second, "the re-syncs to be recorded unchanged", func() bool {
		for i := range after {
			r, err := store.Latest(t.Context(), subNumber(i))
			if err != nil || r == nil || r.Outcome != syncer.Unchanged || r.Trigger.Source != syncer.SourceManual {
				return false
			}
		}
		return true
	})
	if got := countWrites(ls) - writes; got != 0 {
		t.Errorf("re-sync after recovery wrote %d times to Limio; want 0", got)
	}
}
