package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// TestResilienceUnauthorizedRetried: the Limio sandbox refuses zsync's
// tokens (HTTP 401, the fresh token after the one refresh too) while
// credentials rotate. A subscription refused on two attempts is synced on
// the third; one refused on every attempt is archived after three, with
// retries left, each attempt recorded as a failure.
//
// The worker runs in-process with the production wiring (newSyncer) so the
// backoff can be short; the processes' path is the same code.
func TestResilienceUnauthorizedRetried(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	zs, ls := zuoratest.NewServer(t), limiotest.NewServer(t)
	c := testConfig(t, rs, zs, ls)
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))

	before, after := initialState(), initialState()
	after.Rev, after.City = 1, "Leeds"
	const cured, never = 0, 1
	want := reference(t, map[int][]subState{cured: {before, after}})
	s := newTestSyncer(t, c, rdb, log)
	for _, i := range []int{cured, never} {
		putSub(t, zs, i, before)
		if _, err := s.Sync(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceManual}); err != nil {
			t.Fatal(err)
		}
		putSub(t, zs, i, after)
	}

	// An attempt meets a 401, refreshes its token, meets another and fails:
	// four refusals cost the first subscription two attempts.
	ls.AddFault(sandbox.Fault{Path: subWritePath(cured), Status: http.StatusUnauthorized, Count: 4})
	ls.AddFault(sandbox.Fault{Path: subWritePath(never), Status: http.StatusUnauthorized})
	neverBefore := ls.Count("", subWritePath(never))

	wc := workerConfig(c)
	wc.MaxRetry = 10
	wc.RetryBase, wc.RetryCap = 20*time.Millisecond, time.Second
	wc.DelayedTaskCheckInterval = 100 * time.Millisecond
	store := worker.NewOutcomeStore(rdb, wc.StoreConfig())
	ws, err := worker.NewServer(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB}, s, store, rdb, wc, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ws.Shutdown)
	enq := testEnqueuer(t, c, rdb)
	ids := map[int]string{}
	for _, i := range []int{cured, never} {
		_, id, err := enq.Enqueue(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceCallout}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}

	converged(t, ls, want, 30*time.Second)
	// Limio holds the write before the run records it.
	eventually(t, 30*time.Second, subNumber(cured)+"'s update recorded", func() bool {
		r, err := store.Latest(t.Context(), subNumber(cured))
		return err == nil && r != nil && r.Outcome == syncer.Updated
	})
	in := inspector(t, rs)
	eventually(t, 30*time.Second, subNumber(never)+"'s task to be archived", func() bool {
		info, err := in.GetTaskInfo(worker.QueueCallouts, ids[never])
		return err == nil && info.State == asynq.TaskStateArchived
	})
	for _, tc := range []struct {
		i    int
		want string // outcomes, oldest first
	}{
		{cured, "[failed failed updated]"},
		{never, "[failed failed failed]"},
	} {
		hist, err := store.History(t.Context(), subNumber(tc.i), 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []syncer.Result
		for k := len(hist) - 1; k >= 0; k-- {
			r, attempt := hist[k], len(hist)-1-k
			got = append(got, r.Outcome)
			if archived := tc.i == never && k == 0; r.TaskID != ids[tc.i] || r.Attempt != attempt || r.Archived != archived {
				t.Errorf("%s: record %d: task %s attempt %d archived %v (%s); want task %s attempt %d archived %v",
					subNumber(tc.i), attempt, r.TaskID, r.Attempt, r.Archived, r.Error, ids[tc.i], attempt, archived)
			}
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("%s: outcomes %v; want %s", subNumber(tc.i), got, tc.want)
		}
	}
	if n := ls.Count("", subWritePath(never)) - neverBefore; n != 6 {
		t.Errorf("%s: %d Limio requests; want 6 (three attempts, each retried once with a fresh token)", subNumber(never), n)
	}
}
