package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// outcomeCounter is a worker.Metrics counting recorded runs by outcome.
type outcomeCounter struct {
	mu       sync.Mutex
	outcomes map[syncer.Result]int
	busy     int
}

func (m *outcomeCounter) Enqueue(string, worker.EnqueueStatus) {}
func (m *outcomeCounter) TaskDone(_ string, r syncer.Result, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes[r]++
}

func (m *outcomeCounter) LockBusy(string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.busy++
}

func (m *outcomeCounter) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("%v, %d lock waits", m.outcomes, m.busy)
}

// faultMix makes a sync attempt meet, at each sandbox, an HTTP 500 about 20%
// of the time, a 429 with Retry-After: 1 about 10%, and a response slower
// than the client's timeout about 5%: an attempt sends about perAttempt
// requests there, so each request gets 1/perAttempt of those rates. Faults
// are tried in order, so each probability is conditional on the earlier ones
// not firing. max429 > 0 caps how many 429s fire in all.
func faultMix(b *sandbox.Base, path string, perAttempt float64, latency time.Duration, max429 int) {
	p500, p429, pSlow := 0.20/perAttempt, 0.10/perAttempt, 0.05/perAttempt
	b.AddFault(sandbox.Fault{Path: path, Status: http.StatusInternalServerError, Probability: p500})
	b.AddFault(sandbox.Fault{Path: path, Status: http.StatusTooManyRequests, RetryAfterS: 1,
		Probability: p429 / (1 - p500), Count: max429})
	b.AddFault(sandbox.Fault{Path: path, LatencyMS: int(latency.Milliseconds()), Probability: pSlow / (1 - p500 - p429)})
}

// TestResilienceUpstreamFaults: 50 subscriptions changed 10 times each, a
// callout per change (500), while both sandboxes fail a third of all API
// requests (500s, 429s with Retry-After, timeouts). Every subscription
// converges on Zuora's final state and nothing is archived.
//
// The worker runs in-process with the production wiring (newSyncer: tenant
// limiter, Redis index, timeouts from config) because the retry backoff
// (worker.Config.RetryBase/RetryCap) has no configuration key: with the
// default 1 s base the run would take minutes.
func TestResilienceUpstreamFaults(t *testing.T) {
	slowTests(t)
	t.Parallel()
	const (
		subs    = 50
		changes = 10
		timeout = 400 * time.Millisecond
	)
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	zs, ls := zuoratest.NewServer(t), limiotest.NewServer(t)
	c := testConfig(t, rs, zs, ls)
	c.Zuora.Timeout, c.Limio.Timeout = timeout, timeout
	c.Worker.MaxRetry = 25
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))

	state := func(rev int) subState {
		st := initialState()
		st.Rev = rev
		st.AutoRenew = rev%2 == 0
		st.City = fmt.Sprintf("City %d", rev/3)
		return st
	}
	states := map[int][]subState{}
	for i := range subs {
		states[i] = []subState{state(0), state(changes)}
	}
	want := reference(t, states)

	// Every subscription exists in Limio before the faults start: created
	// with the default timeouts, since no fault is injected yet and a loaded
	// machine may take longer than the test's short ones.
	s := newTestSyncer(t, c, rdb, log)
	setupCfg := *c
	setupCfg.Zuora.Timeout, setupCfg.Limio.Timeout = config.Defaults().Zuora.Timeout, config.Defaults().Limio.Timeout
	setup := newTestSyncer(t, &setupCfg, rdb, log)
	for i := range subs {
		putSub(t, zs, i, state(0))
		if _, err := setup.Sync(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceManual}); err != nil {
			t.Fatal(err)
		}
	}

	// A sync attempt reads Zuora 3 times; it reads Limio twice and writes
	// once or twice. A Zuora 429's Retry-After pauses every worker (the
	// tenant-wide limiter), so at 10% of attempts the tenant would be paused
	// nearly all the time: Zuora's 429s are capped at 10 (10 s of pauses).
	faultMix(zs.Base, "/v1/", 3, 2*timeout, 10)
	faultMix(ls.Base, "/api/", 4, 2*timeout, 0)
	wc := workerConfig(c)
	wc.RetryBase, wc.RetryCap = 20*time.Millisecond, 300*time.Millisecond
	wc.DelayedTaskCheckInterval = 100 * time.Millisecond
	// A Limio write that timed out may land until the sandbox's injected
	// latency has passed (2 × timeout): the lock is held that long after it,
	// not the production default meant for a real Limio.
	wc.WriteGrace = 2 * timeout
	// After an uncertain write the lock is held for the longer of the grace
	// and what is left of its TTL (#13): with the default 30 s TTL a late
	// timeout kept its subscription waiting up to 30 s, past the test's
	// windows (the flake seen in CI). A TTL to match these short syncs.
	wc.LockTTL = 2 * time.Second
	counts := &outcomeCounter{outcomes: map[syncer.Result]int{}}
	ws, err := worker.NewServer(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB}, s,
		worker.NewOutcomeStore(rdb, wc.StoreConfig()), rdb, wc, log, worker.WithMetrics(counts))
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ws.Shutdown)

	start := time.Now()
	in := inspector(t, rs)
	enq := testEnqueuer(t, c, rdb)
	for rev := 1; rev <= changes; rev++ {
		for i := range subs {
			putSub(t, zs, i, state(rev))
			if _, _, err := enq.Enqueue(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceCallout}, ""); err != nil {
				t.Fatal(err)
			}
		}
		// The next change waits until this round's tasks have all started
		// (a started task has closed its epoch), so each change gets its own
		// sync rather than coalescing into the previous one.
		eventually(t, 20*time.Second, fmt.Sprintf("round %d's tasks to start", rev), func() bool {
			return queueCounts(t, in, worker.QueueCallouts).Pending == 0
		})
	}
	lastLog := time.Now()
	var first string
	var n int
	if !waittest.Until(t.Context(), 60*time.Second, func() bool {
		if first, n = diffStates(t, ls, want); n > 0 && time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			t.Logf("%v: %d subscriptions not converged; runs: %s", time.Since(start).Round(time.Second), n, counts)
		}
		return n == 0
	}) {
		t.Fatalf("not converged after %v: %d of %d subscriptions differ; runs: %s; %s",
			time.Since(start).Round(time.Second), n, subs, counts, first)
	}
	eventually(t, 30*time.Second, "the queue to drain", func() bool {
		q := queueCounts(t, in, worker.QueueCallouts)
		return q.Active == 0 && q.Pending == 0 && q.Retry == 0 && q.Scheduled == 0
	})
	t.Logf("converged in %v; runs: %s; requests: zuora %d, limio %d", time.Since(start).Round(time.Millisecond), counts,
		zs.Count("", "/v1/"), ls.Count("", "/api/"))
	q := queueCounts(t, in, worker.QueueCallouts)
	if q.Archived != 0 {
		t.Errorf("archived tasks: %d; want 0", q.Archived)
	}
	recs, err := worker.NewOutcomeStore(rdb, wc.StoreConfig()).Stream(t.Context(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Archived {
			t.Errorf("archived: %s %s attempt %d: %s", r.Subscription, r.TaskID, r.Attempt, r.Error)
		}
	}
	for i := range subs {
		if d := duplicateRefs(ls, i); len(d) > 0 {
			t.Errorf("%s: duplicate non-cancelled schedule entries %v", subNumber(i), d)
		}
	}
}
