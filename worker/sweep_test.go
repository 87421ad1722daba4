package worker

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// sweepMetrics counts sweeps (and satisfies Metrics, as WithMetrics wants).
type sweepMetrics struct {
	countingMetrics
	ok, failed, rejected atomic.Int64
}

func (m *sweepMetrics) SweepRejected() { m.rejected.Add(1) }

func (m *sweepMetrics) Sweep(ok bool, _ int, _ time.Duration) {
	if ok {
		m.ok.Add(1)
	} else {
		m.failed.Add(1)
	}
}

// sweepEnv is a Zuora sandbox and its client next to a testEnv.
type sweepEnv struct {
	*testEnv
	zs *zuoratest.Server
	zc *zuora.Client
}

func newSweepEnv(t *testing.T) *sweepEnv {
	t.Helper()
	zs := zuoratest.NewServer(t)
	zc, err := zuora.New(zs.Config())
	if err != nil {
		t.Fatal(err)
	}
	return &sweepEnv{testEnv: newTestEnv(t, nil), zs: zs, zc: zc}
}

// put stores a subscription in the sandbox with UpdatedDate at.
func (e *sweepEnv) put(t *testing.T, number string, at time.Time) {
	t.Helper()
	e.zs.SetClock(func() time.Time { return at })
	defer e.zs.SetClock(time.Now)
	if err := e.zs.PutSubscription(zuora.Subscription{SubscriptionNumber: number, Status: "Active"}); err != nil {
		t.Fatal(err)
	}
}

func (e *sweepEnv) sweeper(t *testing.T, cfg SweepConfig, m Metrics) *Sweeper {
	t.Helper()
	cfg.Prefix = e.cfg.Prefix
	sw, err := NewSweeper(e.zc, e.enq, e.rdb, cfg, e.log, WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

// startWorker starts a worker "process" running syncs (the fake) and sweeps.
func (e *sweepEnv) startWorker(t *testing.T, sw *Sweeper) {
	t.Helper()
	srv, err := NewServer(e.opt, e.fake, e.store, e.rdb, e.cfg, e.log)
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle(TaskTypeSweep, sw)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

func (e *sweepEnv) queries() int { return e.zs.Count(http.MethodPost, "/v1/action/query") }

func (e *sweepEnv) state(t *testing.T, sw *Sweeper) SweepState {
	t.Helper()
	st, err := sw.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (e *sweepEnv) syncs(key string) int {
	_, _, n := e.fake.state(key)
	return n
}

// TestSweepEnqueuesChangesAndMovesTheMarkOnlyOnSuccess: the first sweep looks
// back Lookback; changed subscriptions are synced through the normal path; a
// sweep whose Zuora query fails leaves the mark and is retried by asynq.
func TestSweepEnqueuesChangesAndMovesTheMarkOnlyOnSuccess(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	now := time.Now()
	e.put(t, "A-S00000001", now.Add(-3*time.Hour)) // before the lookback
	e.put(t, "A-S00000002", now.Add(-10*time.Minute))
	e.put(t, "A-S00000003", now.Add(-time.Minute))

	m := &sweepMetrics{}
	sw := e.sweeper(t, SweepConfig{Schedule: "@every 1s", Lookback: time.Hour, Overlap: 2 * time.Second, MaxRetry: 100}, m)
	e.startWorker(t, sw)
	client := asynq.NewClient(e.opt)
	t.Cleanup(func() { _ = client.Close() })

	start := time.Now()
	if _, err := sw.Enqueue(t.Context(), client); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	waitFor(t, 10*time.Second, "changed subscriptions synced", func() bool {
		return e.syncs("A-S00000002") == 1 && e.syncs("A-S00000003") == 1 && e.drained(t)
	})
	if n := e.syncs("A-S00000001"); n != 0 {
		t.Fatalf("a subscription unchanged within the lookback was synced %d times", n)
	}
	e.fake.mu.Lock()
	for _, k := range []string{"A-S00000002", "A-S00000003"} {
		if got := e.fake.trigs[k]; len(got) != 1 || got[0].Source != syncer.SourceSweep {
			t.Errorf("%s synced with triggers %+v; want one sweep", k, got)
		}
	}
	e.fake.mu.Unlock()
	st := e.state(t, sw)
	if st.Enqueued != 2 || m.ok.Load() != 1 {
		t.Fatalf("state %+v, ok sweeps %d; want 2 enqueued by 1 sweep", st, m.ok.Load())
	}
	if lo, hi := start.Add(-2*time.Second-time.Millisecond), time.Now().Add(-2*time.Second); st.Mark.Before(lo) || st.Mark.After(hi) {
		t.Fatalf("mark %s; want the sweep's start minus the overlap, in [%s, %s]", st.Mark, lo, hi)
	}

	// The next sweep asks from the mark: only what changed since.
	e.put(t, "A-S00000004", time.Now())
	e.zs.AddFault(sandbox.Fault{Method: http.MethodPost, Path: "/v1/action/query", Status: http.StatusInternalServerError})
	before := e.queries()
	waitFor(t, 10*time.Second, "a new schedule window", func() bool {
		return time.Now().Truncate(time.Second).After(st.Window)
	})
	if _, err := sw.Enqueue(t.Context(), client); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	waitFor(t, 10*time.Second, "the failing sweep retried", func() bool {
		return e.queries() >= before+3 && m.failed.Load() >= 3
	})
	if got := e.state(t, sw); !got.Mark.Equal(st.Mark) || !got.LastSuccess.Equal(st.LastSuccess) {
		t.Fatalf("a failed sweep moved the state: %+v → %+v", st, got)
	}
	if n := e.syncs("A-S00000004"); n != 0 {
		t.Fatalf("synced %d times during a failing sweep", n)
	}

	e.zs.ClearFaults()
	waitFor(t, 10*time.Second, "the retried sweep succeeded", func() bool {
		return m.ok.Load() == 2 && e.syncs("A-S00000004") == 1 && e.drained(t)
	})
	got := e.state(t, sw)
	if !got.Mark.After(st.Mark) || got.Enqueued+got.Coalesced < 1 {
		t.Fatalf("after the retry: %+v (before %+v)", got, st)
	}
	// A-S00000003 changed 1 minute before the first sweep, outside the
	// overlap: the second sweep didn't ask for it again.
	if n := e.syncs("A-S00000003"); n != 1 {
		t.Fatalf("A-S00000003 synced %d times; want 1", n)
	}
}

// TestSweepWhoseQueryZuoraRejects: a ZOQL fault (the query itself is
// refused) is not retried: the sweep task is archived at once, the state
// says why, the metrics count a rejected sweep, and the mark stays.
func TestSweepWhoseQueryZuoraRejects(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	e.put(t, "A-S00000001", time.Now().Add(-time.Minute))
	e.zs.AddFault(sandbox.Fault{Method: http.MethodPost, Path: "/v1/action/query", Status: http.StatusInternalServerError,
		Body: `{"faultcode":"fns:INVALID_FIELD","faultstring":"invalid field for query: UpdatedDate","detail":{"MalformedQueryFault":{"FaultCode":"INVALID_FIELD","FaultMessage":"x"}}}`})
	m := &sweepMetrics{}
	sw := e.sweeper(t, SweepConfig{Schedule: "@every 1s", Lookback: time.Hour, MaxRetry: 100}, m)
	e.startWorker(t, sw)
	client := asynq.NewClient(e.opt)
	t.Cleanup(func() { _ = client.Close() })
	if _, err := sw.Enqueue(t.Context(), client); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	insp := asynq.NewInspector(e.opt)
	t.Cleanup(func() { _ = insp.Close() })
	waitFor(t, 10*time.Second, "the rejected sweep archived", func() bool {
		tasks, _ := insp.ListArchivedTasks(QueueBulk)
		return len(tasks) == 1 && m.rejected.Load() == 1
	})
	st := e.state(t, sw)
	if n := e.queries(); n != 1 || m.failed.Load() != 0 || !st.Mark.IsZero() ||
		!strings.Contains(st.Rejected, "invalid field for query: UpdatedDate") {
		t.Fatalf("queries %d, failed %d, state %+v; want one query, a rejection naming the fault, no mark", n, m.failed.Load(), st)
	}
	if n := e.syncs("A-S00000001"); n != 0 {
		t.Fatalf("synced %d times", n)
	}
}

// TestSweepOnePerWindowAcrossProcesses: two worker processes, each with its
// own sweeper, ticking many times within one window → one Zuora query.
func TestSweepOnePerWindowAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	e.put(t, "A-S00000010", time.Now())
	m := &sweepMetrics{}
	var sweepers [2]*Sweeper
	var clients [2]*asynq.Client
	for i := range sweepers {
		sweepers[i] = e.sweeper(t, SweepConfig{Schedule: "@every 1h"}, m)
		e.startWorker(t, sweepers[i])
		clients[i] = asynq.NewClient(e.opt)
		t.Cleanup(func() { _ = clients[i].Close() })
	}
	for round := range 5 {
		for i := range sweepers {
			_, err := sweepers[i].Enqueue(t.Context(), clients[i])
			if err != nil && !(round+i > 0 && isDuplicate(err)) {
				t.Fatalf("tick %d of process %d: %v", round, i, err)
			}
		}
		waitFor(t, 10*time.Second, "ticks processed", func() bool { return e.drained(t) })
	}
	// A sweep makes three queries (subscriptions, accounts, contacts), four
	// when a day rolled over since its mark (the terms that ended that day).
	if q, ok := e.queries(), m.ok.Load(); ok != 1 || q < 3 || q > 4 {
		t.Fatalf("%d Zuora queries, %d sweeps for 10 ticks in one window; want 1 sweep", q, ok)
	}
	if n := e.syncs("A-S00000010"); n != 1 {
		t.Fatalf("synced %d times; want 1", n)
	}
}

// TestSweepSchedulers: two real asynq schedulers on "@every 1s" sweep at most
// once per one-second window between them.
func TestSweepSchedulers(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	m := &sweepMetrics{}
	var scheds []*asynq.Scheduler
	first := time.Now()
	for range 2 {
		sw := e.sweeper(t, SweepConfig{Schedule: "@every 1s"}, m)
		e.startWorker(t, sw)
		sch, err := sw.Scheduler(e.opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Start(); err != nil {
			t.Fatal(err)
		}
		scheds = append(scheds, sch)
	}
	waitFor(t, 10*time.Second, "three sweeps", func() bool { return m.ok.Load() >= 3 })
	for _, sch := range scheds {
		sch.Shutdown()
	}
	waitFor(t, 10*time.Second, "queues drained", func() bool { return e.drained(t) })
	windows := time.Now().Truncate(time.Second).Sub(first.Truncate(time.Second))/time.Second + 1
	if ok, q := m.ok.Load(), e.queries(); ok > int64(windows) || int64(q) < 3*ok || int64(q) > 4*ok {
		t.Fatalf("%d sweeps (%d Zuora queries) in %d one-second windows; want at most one per window", ok, q, windows)
	}
}

func isDuplicate(err error) bool { return errors.Is(err, asynq.ErrDuplicateTask) }

// A term that lapses changes nothing in Zuora (no UpdatedDate, no callout):
// the sweep also asks for the termed subscriptions whose term ended on a day
// that began since its mark, so Limio shows them expired.
func TestSweepFindsLapsedTerms(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	today := time.Now().UTC()
	put := func(number string, termEnd time.Time) {
		e.zs.SetClock(func() time.Time { return today.Add(-72 * time.Hour) }) // unchanged for days
		defer e.zs.SetClock(time.Now)
		if err := e.zs.PutSubscription(zuora.Subscription{SubscriptionNumber: number, Status: "Active",
			TermType: "TERMED", TermEndDate: termEnd.Format(time.DateOnly)}); err != nil {
			t.Fatal(err)
		}
	}
	put("A-S00000021", today)                   // lapsed today
	put("A-S00000022", today.AddDate(0, 0, -1)) // lapsed yesterday, after the mark
	put("A-S00000023", today.AddDate(0, 0, 1))  // still in term
	put("A-S00000024", today.AddDate(0, 0, -5)) // lapsed before the mark: an earlier sweep's
	m := &sweepMetrics{}
	sw := e.sweeper(t, SweepConfig{Schedule: "@every 1h", Lookback: 48 * time.Hour}, m)
	e.startWorker(t, sw)
	client := asynq.NewClient(e.opt)
	t.Cleanup(func() { _ = client.Close() })
	if _, err := sw.Enqueue(t.Context(), client); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the sweep", func() bool { return m.ok.Load() == 1 && e.drained(t) })
	for number, want := range map[string]int{"A-S00000021": 1, "A-S00000022": 1, "A-S00000023": 0, "A-S00000024": 0} {
		if got := e.syncs(number); got != want {
			t.Errorf("%s synced %d times; want %d", number, got, want)
		}
	}
}
