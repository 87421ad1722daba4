package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// testClock is the ingress's clock in tests: it moves only when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// refusalCounts is an HTTPMetrics that remembers the refusals.
type refusalCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (r *refusalCounts) CalloutRefused(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]int{}
	}
	r.m[reason]++
}

func (r *refusalCounts) HTTPRequest(string, string, int, time.Duration) {}
func (r *refusalCounts) DeclareRefusals([]string)                       {}
func (r *refusalCounts) CalloutSkipped()                                {}

func (r *refusalCounts) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[reason]
}

// liveIngress is the real ingress on a real HTTP listener, enqueueing into
// a real Redis through the real enqueuer.
type liveIngress struct {
	URL      string
	insp     *asynq.Inspector
	refusals *refusalCounts
}

type liveOpts struct {
	clock *testClock
	redis *redistest.Server // shared by several ingresses
}

func startLive(t *testing.T, cfg Config, o liveOpts) *liveIngress {
	t.Helper()
	if o.redis == nil {
		o.redis = redistest.Start(t)
	}
	if o.clock == nil {
		o.clock = newTestClock()
	}
	rdb := o.redis.Client(t)
	client := asynq.NewClientFromRedisClient(rdb)
	l := &liveIngress{refusals: &refusalCounts{}}
	deps := Deps{
		Enqueuer: worker.NewEnqueuer(rdb, client, worker.EnqueueConfig{}, zap.NewNop()),
		Outcomes: worker.NewOutcomeStore(rdb, worker.StoreConfig{}),
		Now:      o.clock.Now,
		// Refusals named by a handler are counted before the answer.
		HTTPMetrics: l.refusals,
	}
	e, err := New(cfg, deps, zap.NewNop())
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	l.URL = srv.URL
	l.insp = asynq.NewInspector(asynq.RedisClientOpt{Addr: o.redis.Addr, DB: o.redis.DB})
	t.Cleanup(func() { _ = l.insp.Close() })
	return l
}

// queued returns the pending callout tasks by key.
func (l *liveIngress) queued(t *testing.T) map[string]syncer.Trigger {
	t.Helper()
	out := map[string]syncer.Trigger{}
	tasks, err := l.insp.ListPendingTasks(worker.QueueCallouts, asynq.PageSize(1000))
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatalf("list pending: %v", err)
	}
	for _, ti := range tasks {
		var p struct {
			Key     string         `json:"key"`
			Trigger syncer.Trigger `json:"trigger"`
		}
		if err := json.Unmarshal(ti.Payload, &p); err != nil {
			t.Fatalf("payload %s: %v", ti.Payload, err)
		}
		out[p.Key] = p.Trigger
	}
	return out
}

func (l *liveIngress) queuedKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for k := range l.queued(t) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// answer is a response read whole.
type answer struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

func send(t *testing.T, r *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &a.body)
	return a
}

func newReq(t *testing.T, method, u, ct, body string, header map[string]string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

func tokenForm(id, secret string) string {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}.Encode()
}
