package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// TestResiliencePermanentErrors: a sync that can never succeed (a
// subscription Zuora doesn't know; Limio answering 400 to the write) is run
// once by a `zsync work` process, recorded as not_found (the task completes:
// not a failure) / failed (archived), and not retried; a later callout for
// the same subscription makes a new task rather than coalescing into the dead
// one.
func TestResiliencePermanentErrors(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	zs, ls := zuoratest.NewServer(t), limiotest.NewServer(t)
	c := testConfig(t, rs, zs, ls)

	// Subscription 1 exists on both sides, then changes in Zuora; Limio
	// refuses the write with a 400.
	s := newTestSyncer(t, c, rdb, zap.NewNop())
	putSub(t, zs, 1, initialState())
	if _, err := s.Sync(t.Context(), subNumber(1), syncer.Trigger{Source: syncer.SourceManual}); err != nil {
		t.Fatal(err)
	}
	changed := initialState()
	changed.Rev, changed.AutoRenew = 1, false
	putSub(t, zs, 1, changed)
	subPath := "/api/objects/limio/" + limio.PathSubscriptions + "/" + limio.NewID("sub", subNumber(1))
	ls.AddFault(sandbox.Fault{Method: http.MethodPut, Path: subPath, Status: http.StatusBadRequest,
		Body: `{"message":"Bad request (invalid field): data.attributes"}`})
	unknown := "A-S09999999"
	putsBefore := ls.Count(http.MethodPut, subPath)

	startProc(t, "work", upstreamEnv(rs, zs, ls), "work")
	enq := testEnqueuer(t, c, rdb)
	for _, key := range []string{unknown, subNumber(1)} {
		if _, _, err := enq.Enqueue(t.Context(), key, syncer.Trigger{Source: syncer.SourceCallout}, ""); err != nil {
			t.Fatal(err)
		}
	}

	in := inspector(t, rs)
	store := worker.NewOutcomeStore(rdb, workerConfig(c).StoreConfig())
	eventually(t, 30*time.Second, "the failed task archived, the unknown one recorded", func() bool {
		r, err := store.Latest(t.Context(), unknown)
		return queueCounts(t, in, worker.QueueCallouts).Archived == 1 && err == nil && r != nil
	})
	for key, want := range map[string]syncer.Result{unknown: syncer.NotFound, subNumber(1): syncer.Failed} {
		r, err := store.Latest(t.Context(), key)
		if err != nil || r == nil {
			t.Fatalf("%s: no outcome recorded (%v)", key, err)
		}
		if r.Outcome != want || r.Archived != (want == syncer.Failed) || r.Attempt != 0 || r.Error == "" || strings.Contains(r.Error, "skip retry") {
			t.Errorf("%s: recorded %s archived=%v attempt=%d error=%q; want %s on attempt 0 with the error (archived only if failed)",
				key, r.Outcome, r.Archived, r.Attempt, r.Error, want)
		}
	}

	// One attempt's worth of requests. No retry can follow: an archived task
	// runs again only when an operator asks, and none is scheduled or
	// pending (the queue check below), so there is no absence to sleep on.
	zuoraGets := func() int { return zs.Count(http.MethodGet, "/v1/subscriptions/"+unknown) }
	limioPuts := func() int { return ls.Count(http.MethodPut, subPath) - putsBefore }
	if zuoraGets() != 1 || limioPuts() != 1 {
		t.Errorf("requests: %d Zuora GETs of %s, %d Limio PUTs of %s; want 1 each", zuoraGets(), unknown, limioPuts(), subPath)
	}
	if q := queueCounts(t, in, worker.QueueCallouts); q.Archived != 1 || q.Retry != 0 || q.Pending != 0 {
		t.Errorf("queue: %d archived, %d retry, %d pending; want 1, 0, 0", q.Archived, q.Retry, q.Pending)
	}

	// The archived task does not swallow the next callout, which syncs
	// once Limio accepts the write again.
	ls.ClearFaults()
	status, _, err := enq.Enqueue(t.Context(), subNumber(1), syncer.Trigger{Source: syncer.SourceCallout}, "")
	if err != nil || status != worker.Enqueued {
		t.Fatalf("callout after the archive: %s, %v; want enqueued", status, err)
	}
	eventually(t, 20*time.Second, "the next callout to sync", func() bool {
		r, err := store.Latest(t.Context(), subNumber(1))
		return err == nil && r != nil && r.Outcome == syncer.Updated
	})
}
