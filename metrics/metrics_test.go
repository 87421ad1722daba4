package metrics

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// scrape GETs the handler and returns every sample, keyed as exposed:
// name{label="v",…} (labels sorted by name, as the text format has them).
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// scriptedSyncer answers from a script per key (then "unchanged").
type scriptedSyncer struct {
	mu     sync.Mutex
	script map[string][]error
	done   map[string]int
}

// Canonical names every id as given: one lock per id.
func (s *scriptedSyncer) Canonical(_ context.Context, key string) (string, error) { return key, nil }

func (s *scriptedSyncer) Sync(_ context.Context, key string, _ syncer.Trigger) (syncer.Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done[key]++
	if errs := s.script[key]; len(errs) > 0 {
		err := errs[0]
		s.script[key] = errs[1:]
		if err != nil {
			return syncer.Outcome{Subscription: key}, err
		}
		return syncer.Outcome{Subscription: key, Result: syncer.Updated}, nil
	}
	return syncer.Outcome{Subscription: key, Result: syncer.Unchanged}, nil
}

func (s *scriptedSyncer) runs(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[key]
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	waittest.For(t, within, what, cond)
}

// TestWorkerSeriesFollowRealEvents drives a real worker server on Redis
// (with a scripted syncer) and checks the scraped series move as they should.
func TestWorkerSeriesFollowRealEvents(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	opt := asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	m := New()
	h := m.Handler()

	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { _ = insp.Close() })
	if err := m.WatchQueues(insp); err != nil {
		t.Fatal(err)
	}

	before := scrape(t, h)
	for _, k := range []string{
		`zsync_syncs_total{outcome="updated",queue="callouts"}`,
		`zsync_enqueues_total{queue="callouts",status="coalesced"}`,
		`zsync_lock_waits_total{queue="callouts"}`,
		`zsync_upstream_throttled_total{api="zuora"}`,
		`zsync_sweeps_total{result="ok"}`,
	} {
		if v, ok := before[k]; !ok || v != 0 {
			t.Fatalf("%s = %v, %v before any event; want a zero series", k, v, ok)
		}
	}

	cfg := worker.Config{
		Concurrency: 4, MaxRetry: 5, TaskTimeout: 10 * time.Second, ShutdownTimeout: 3 * time.Second,
		LockTTL: 3 * time.Second, LockBusyDelay: 30 * time.Millisecond, RetryBase: 20 * time.Millisecond,
		RetryCap: 200 * time.Millisecond, TaskCheckInterval: 20 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
	}.WithDefaults()
	client := asynq.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	enq := worker.NewEnqueuer(rdb, client, cfg.EnqueueConfig(), log, worker.WithMetrics(m))

	throttled := &upstream.Error{API: "zuora", Op: "GET /v1/subscriptions/{key}", StatusCode: 429,
		Kind: upstream.Throttled, RetryAfter: 10 * time.Millisecond}
	fake := &scriptedSyncer{done: map[string]int{}, script: map[string][]error{
		"A-S00000001": {nil},            // updated
		"A-S00000002": {throttled, nil}, // waits for the limit, then updated
	}}
	received := time.Now().Add(-3 * time.Second)
	trig := syncer.Trigger{Source: syncer.SourceCallout, Received: received}
	for _, k := range []string{"A-S00000001", "A-S00000001", "A-S00000002"} {
		if _, _, err := enq.Enqueue(t.Context(), k, trig, worker.QueueCallouts); err != nil {
			t.Fatal(err)
		}
	}
	// A-S00000003 is locked by "another run" until the worker has waited
	// for it once.
	lockKey := cfg.Prefix + "lock:A-S00000003"
	if err := rdb.Set(t.Context(), lockKey, "someone", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := enq.Enqueue(t.Context(), "A-S00000003", syncer.Trigger{Source: syncer.SourceManual}, worker.QueueCallouts); err != nil {
		t.Fatal(err)
	}
	queued := scrape(t, h)
	if v := queued[`asynq_queue_size{queue="callouts"}`]; v != 3 {
		t.Fatalf("asynq_queue_size{callouts} = %v with 3 tasks waiting", v)
	}

	srv, err := worker.NewServer(opt, m.Syncer(fake), worker.NewOutcomeStore(rdb, cfg.StoreConfig()), rdb, cfg, log, worker.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	waitFor(t, 10*time.Second, "a wait for the locked subscription", func() bool {
		return scrape(t, h)[`zsync_lock_waits_total{queue="callouts"}`] >= 1
	})
	if err := rdb.Del(t.Context(), lockKey).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "every task recorded", func() bool {
		s := scrape(t, h)
		return s[`zsync_syncs_total{outcome="updated",queue="callouts"}`] == 2 &&
			s[`zsync_syncs_total{outcome="unchanged",queue="callouts"}`] == 1
	})

	// Upstream calls, through a real client with the observer.
	zs := zuoratest.NewServer(t)
	zc, err := zuora.New(zs.Config(), zuora.WithObserver(m.Observer("zuora")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zc.GetSubscription(t.Context(), "A-S09999999"); err == nil {
		t.Fatal("a missing subscription was found")
	}
	m.Sweep(true, 4, time.Second)
	m.Sweep(false, 0, time.Second)

	after := scrape(t, h)
	want := map[string]float64{
		`zsync_enqueues_total{queue="callouts",status="enqueued"}`:                                               3,
		`zsync_enqueues_total{queue="callouts",status="coalesced"}`:                                              1,
		`zsync_syncs_total{outcome="updated",queue="callouts"}`:                                                  2,
		`zsync_syncs_total{outcome="unchanged",queue="callouts"}`:                                                1,
		`zsync_syncs_total{outcome="failed",queue="callouts"}`:                                                   0, // a throttled attempt is a wait, not an outcome
		`zsync_sync_duration_seconds_count{queue="callouts"}`:                                                    3,
		`zsync_upstream_throttled_total{api="zuora"}`:                                                            1,
		`zsync_event_to_sync_seconds_count{source="callout"}`:                                                    2,
		`zsync_upstream_requests_total{api="zuora",op="GET /v1/subscriptions/{key}",status="404"}`:               1,
		`zsync_upstream_request_duration_seconds_count{api="zuora",op="GET /v1/subscriptions/{key}"}`:            1,
		`zsync_sweeps_total{result="ok"}`:                                                                        1,
		`zsync_sweeps_total{result="failed"}`:                                                                    1,
		`zsync_sweep_subscriptions_total`:                                                                        4,
		`asynq_queue_size{queue="callouts"}`:                                                                     0,
		`zsync_event_to_sync_seconds_bucket{source="callout",le="0.9"}`:                                          0, // ≥ 3s late
		`zsync_upstream_request_duration_seconds_bucket{api="zuora",op="GET /v1/subscriptions/{key}",le="+Inf"}`: 1,
	}
	for k, v := range want {
		if got := after[k]; got != v {
			t.Errorf("%s = %v; want %v", k, got, v)
		}
	}
	if v := after[`zsync_lock_waits_total{queue="callouts"}`]; v < 1 {
		t.Errorf("zsync_lock_waits_total{callouts} = %v after a locked subscription; want ≥ 1", v)
	}
	if lag := after[`zsync_event_to_sync_seconds_sum{source="callout"}`]; lag < 2*3 {
		t.Errorf("event-to-sync lag sum %v for two syncs ≥ 3s after the callout", lag)
	}
	if v := after["zsync_sweep_last_success_timestamp_seconds"]; v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("zsync_sweep_last_success_timestamp_seconds = %v", v)
	}
	if fake.runs("A-S00000003") != 1 {
		t.Errorf("the locked subscription ran %d times", fake.runs("A-S00000003"))
	}
}
