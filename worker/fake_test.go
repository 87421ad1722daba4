package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/syncer"
)

// fakeSyncer is an in-memory "Zuora" (subscription → version, bumped by the
// test) and "Limio" (subscription → last version written), instrumented.
type fakeSyncer struct {
	mu          sync.Mutex
	zuora       map[string]int64
	limio       map[string]int64
	inflight    map[string]int
	maxInflight map[string]int
	syncs       map[string]int
	trigs       map[string][]syncer.Trigger
	maxRetry    int                // highest asynq retry count a sync saw
	errs        map[string][]error // injected, one per sync
	delay       func() time.Duration
	// block, when set, runs between reading "Zuora" and writing "Limio";
	// n counts the syncs of key so far (1 for the first).
	block func(ctx context.Context, key string, n int) error
	// canonical maps other id forms to a subscription's Zuora number;
	// canonicalErr fails Canonical (a Limio lookup) for a key.
	canonical    map[string]string
	canonicalErr map[string]error
}

func (f *fakeSyncer) Canonical(_ context.Context, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.canonicalErr[key]; err != nil {
		return "", err
	}
	if c, ok := f.canonical[key]; ok {
		return c, nil
	}
	return key, nil
}

func newFakeSyncer() *fakeSyncer {
	return &fakeSyncer{
		zuora: map[string]int64{}, limio: map[string]int64{}, inflight: map[string]int{},
		maxInflight: map[string]int{}, syncs: map[string]int{}, trigs: map[string][]syncer.Trigger{},
		errs: map[string][]error{},
	}
}

func (f *fakeSyncer) bump(key string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.zuora[key]++
	return f.zuora[key]
}

func (f *fakeSyncer) failNext(key string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[key] = append(f.errs[key], errs...)
}

func (f *fakeSyncer) state(key string) (zuora, limio int64, syncs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.zuora[key], f.limio[key], f.syncs[key]
}

func (f *fakeSyncer) Sync(ctx context.Context, key string, trig syncer.Trigger) (syncer.Outcome, error) {
	f.mu.Lock()
	f.inflight[key]++
	f.maxInflight[key] = max(f.maxInflight[key], f.inflight[key])
	f.syncs[key]++
	n := f.syncs[key]
	f.trigs[key] = append(f.trigs[key], trig)
	if r, ok := asynq.GetRetryCount(ctx); ok {
		f.maxRetry = max(f.maxRetry, r)
	}
	var injected error
	if errs := f.errs[key]; len(errs) > 0 {
		injected, f.errs[key] = errs[0], errs[1:]
	}
	v := f.zuora[key] // read "Zuora"
	block, delay := f.block, f.delay
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[key]--
		f.mu.Unlock()
	}()

	if injected != nil {
		return syncer.Outcome{Subscription: key, Result: syncer.Failed}, injected
	}
	if trig.OrderSource == "shop" { // the loop guard
		return syncer.Outcome{Subscription: key, Result: syncer.Skipped, Reason: "made by Limio"}, nil
	}
	if block != nil {
		if err := block(ctx, key, n); err != nil {
			return syncer.Outcome{}, err
		}
	}
	if delay != nil {
		select {
		case <-time.After(delay()):
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil { // nothing is written without the lock
		return syncer.Outcome{}, context.Cause(ctx)
	}
	f.mu.Lock()
	old := f.limio[key]
	f.limio[key] = v
	f.mu.Unlock()
	out := syncer.Outcome{Subscription: key, Result: syncer.Unchanged}
	if old != v {
		out.Result = syncer.Updated
		out.Changes = []syncer.Change{{Object: "subscription", ID: "sub-" + key, Op: syncer.OpUpdate,
			Field: "data.zuora.version", Old: fmt.Sprint(old), New: fmt.Sprint(v)}}
	}
	return out, nil
}

// testEnv is one test's Redis, enqueuer, store and fake.
type testEnv struct {
	rs    *redistest.Server
	rdb   *redis.Client
	opt   asynq.RedisClientOpt
	cfg   Config
	enq   *Enqueuer
	store *OutcomeStore
	fake  *fakeSyncer
	insp  *asynq.Inspector
	log   *zap.Logger
}

// testConfig is fast: short polls, short waits.
func testConfig() Config {
	return Config{
		Concurrency:              8,
		MaxRetry:                 3,
		TaskTimeout:              10 * time.Second,
		ShutdownTimeout:          3 * time.Second,
		LockTTL:                  3 * time.Second,
		LockBusyDelay:            30 * time.Millisecond,
		RetryBase:                20 * time.Millisecond,
		RetryCap:                 200 * time.Millisecond,
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		CoalesceWindow:           100 * time.Millisecond,
	}
}

func newTestEnv(t *testing.T, mod func(*Config)) *testEnv {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	cfg = cfg.WithDefaults()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	e := &testEnv{
		rs: rs, rdb: rdb, cfg: cfg, log: log,
		opt:   asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB},
		store: NewOutcomeStore(rdb, cfg.StoreConfig()),
		fake:  newFakeSyncer(),
	}
	client := asynq.NewClient(e.opt)
	t.Cleanup(func() { _ = client.Close() })
	e.enq = NewEnqueuer(rdb, client, cfg.EnqueueConfig(), log)
	e.insp = asynq.NewInspector(e.opt)
	t.Cleanup(func() { _ = e.insp.Close() })
	return e
}

// startServer starts a worker "process"; it is shut down when the test ends.
func (e *testEnv) startServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	srv, err := NewServer(e.opt, e.fake, e.store, e.rdb, e.cfg, e.log, opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func (e *testEnv) epoch(t *testing.T, key string) int64 {
	t.Helper()
	v, err := e.rdb.HGet(t.Context(), e.cfg.Prefix+"epoch:"+key, "e").Int64()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		t.Fatalf("read epoch: %v", err)
	}
	return v
}

// drained reports whether no sync task is waiting, running or retrying.
func (e *testEnv) drained(t *testing.T) bool {
	t.Helper()
	queues, err := e.insp.Queues()
	if err != nil {
		t.Fatalf("Queues: %v", err)
	}
	for _, q := range queues {
		info, err := e.insp.GetQueueInfo(q)
		if err != nil {
			t.Fatalf("GetQueueInfo(%s): %v", q, err)
		}
		if info.Pending+info.Active+info.Scheduled+info.Retry > 0 {
			return false
		}
	}
	return true
}

func (e *testEnv) archived(t *testing.T, q string) []*asynq.TaskInfo {
	t.Helper()
	tasks, err := e.insp.ListArchivedTasks(q)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatalf("ListArchivedTasks: %v", err)
	}
	return tasks
}

func (e *testEnv) enqueue(t *testing.T, key string, trig syncer.Trigger) (EnqueueStatus, string) {
	t.Helper()
	st, id, err := e.enq.Enqueue(t.Context(), key, trig, QueueCallouts)
	if err != nil {
		t.Fatalf("Enqueue(%s): %v", key, err)
	}
	return st, id
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waittest.For(t, timeout, what, cond)
}

// current waits until every key's Limio matches Zuora and the queues are empty.
func (e *testEnv) waitCurrent(t *testing.T, timeout time.Duration, keys ...string) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d subscriptions current", len(keys)), func() bool {
		for _, k := range keys {
			z, l, _ := e.fake.state(k)
			if z != l {
				return false
			}
		}
		return e.drained(t)
	})
}

var callout = syncer.Trigger{Source: syncer.SourceCallout, EventType: "RenewSubscription"}

// countingMetrics counts what the Metrics hook reports.
type countingMetrics struct {
	enqueued, coalesced, busy, done atomic.Int64
}

func (m *countingMetrics) Enqueue(_ string, st EnqueueStatus) {
	if st == Coalesced {
		m.coalesced.Add(1)
	} else {
		m.enqueued.Add(1)
	}
}
func (m *countingMetrics) TaskDone(string, syncer.Result, time.Duration) { m.done.Add(1) }
func (m *countingMetrics) LockBusy(string)                               { m.busy.Add(1) }
