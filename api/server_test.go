package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// Secrets used by the tests; none may appear in a log line.
const (
	calloutUser = "zuora"
	calloutPass = "callout-pass-S3CR3T"
	opToken     = "op-token-S3CR3T"
	opUser      = "admin"
	opPass      = "op-pass-S3CR3T"
	hmacSecret  = "hmac-secret-S3CR3T"
)

type enqCall struct {
	Key   string
	Trig  syncer.Trigger
	Queue string
}

type fakeEnqueuer struct {
	mu     sync.Mutex
	calls  []enqCall
	status worker.EnqueueStatus
	err    error
	panic  bool
}

func (f *fakeEnqueuer) Enqueue(_ context.Context, key string, trig syncer.Trigger, queue string) (worker.EnqueueStatus, string, error) {
	if f.panic {
		panic("enqueuer exploded")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", "", f.err
	}
	f.calls = append(f.calls, enqCall{key, trig, queue})
	st := f.status
	if st == "" {
		st = worker.Enqueued
	}
	return st, key + ":0", nil
}

func (f *fakeEnqueuer) EnqueueAccount(ctx context.Context, account string, trig syncer.Trigger, queue string) (worker.EnqueueStatus, string, error) {
	return f.Enqueue(ctx, worker.AccountKey(account), trig, queue)
}

func (f *fakeEnqueuer) Calls() []enqCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]enqCall(nil), f.calls...)
}

type fakeOutcomes struct {
	mu      sync.Mutex
	latest  map[string]*worker.Record
	history map[string][]worker.Record
	skipped []enqCall
	err     error
}

func (f *fakeOutcomes) Latest(_ context.Context, id string) (*worker.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.latest[id], f.err
}

func (f *fakeOutcomes) History(_ context.Context, id string, n int) ([]worker.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.history[id]
	if len(h) > n {
		h = h[:n]
	}
	return h, f.err
}

func (f *fakeOutcomes) RecordSkipped(_ context.Context, key string, trig syncer.Trigger) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skipped = append(f.skipped, enqCall{Key: key, Trig: trig})
	return nil
}

func (f *fakeOutcomes) Skipped() []enqCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]enqCall(nil), f.skipped...)
}

type fakePlanner struct{}

func (fakePlanner) DryRun(_ context.Context, key string) (syncer.Outcome, error) {
	if key == "A-S404" {
		return syncer.Outcome{}, fmt.Errorf("dry run: %w", syncer.ErrNotFound)
	}
	return syncer.Outcome{Subscription: key, Result: syncer.Updated, Changes: []syncer.Change{{Object: "subscription", Field: "status", New: "active"}}}, nil
}

type testBundle struct {
	e    *echo.Echo
	enq  *fakeEnqueuer
	out  *fakeOutcomes
	logs *observer.ObservedLogs
	// monitorPaths records the paths the dummy asynqmon saw.
	mu           sync.Mutex
	monitorPaths []string
}

func baseConfig() Config {
	return Config{
		CalloutUsername:    calloutUser,
		CalloutPassword:    calloutPass,
		OperatorToken:      opToken,
		OperatorUsername:   opUser,
		OperatorPassword:   opPass,
		IntegrationUserIDs: []string{"2c92c0f8integration"},
	}
}

func setup(t *testing.T, cfg Config, mod ...func(*Deps)) *testBundle {
	t.Helper()
	b := &testBundle{enq: &fakeEnqueuer{}, out: &fakeOutcomes{}}
	core, logs := observer.New(zapcore.DebugLevel)
	b.logs = logs
	deps := Deps{
		Enqueuer: b.enq,
		Outcomes: b.out,
		Ready:    func(context.Context) error { return nil },
		Monitor: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.mu.Lock()
			b.monitorPaths = append(b.monitorPaths, r.URL.Path)
			b.mu.Unlock()
			_, _ = io.WriteString(w, "asynqmon")
		}),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "# metrics\n")
		}),
	}
	for _, m := range mod {
		m(&deps)
	}
	e, err := New(cfg, deps, zap.New(core))
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	b.e = e
	return b
}

type req struct {
	method, path, ct, body string
	header                 map[string]string
	user, pass             string // Basic, when user != ""
	bearer                 string
	remote                 string
}

func (b *testBundle) do(t *testing.T, r req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.ct != "" {
		hr.Header.Set("Content-Type", r.ct)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.pass)
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, hr)
	return rec
}

// callout is a Basic-authenticated callout request.
func callout(path, ct, body string) req {
	return req{method: http.MethodPost, path: path, ct: ct, body: body, user: calloutUser, pass: calloutPass}
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q; want application/json (body %q)", ct, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return m
}

func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status = %d; want %d (body %s)", rec.Code, code, rec.Body.String())
	}
}

// wantError checks a JSON error answer.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	wantStatus(t, rec, code)
	m := decode(t, rec)
	if m["success"] != false || m["error"] == "" || m["error"] == nil {
		t.Fatalf("error body = %s; want success:false with an error", rec.Body.String())
	}
}

const limioPath = "/api/plugins/zuora/sync/subscription/"

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	b.enq.panic = true
	wantError(t, b.do(t, callout(limioPath+"A-S1", "", "")), http.StatusInternalServerError)
	if b.logs.FilterMessage("panic").Len() != 1 {
		t.Fatalf("panic not logged")
	}
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	var ready error
	var mu sync.Mutex
	b := setup(t, baseConfig(), func(d *Deps) {
		d.Ready = func(context.Context) error { mu.Lock(); defer mu.Unlock(); return ready }
	})
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/healthz"}), http.StatusOK)
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/readyz"}), http.StatusOK)
	mu.Lock()
	ready = errors.New("redis: connection refused")
	mu.Unlock()
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/readyz"}), http.StatusServiceUnavailable)
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/readyz/detail", bearer: opToken}), http.StatusServiceUnavailable)
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/healthz"}), http.StatusOK)
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}, Deps{Enqueuer: &fakeEnqueuer{}, Outcomes: &fakeOutcomes{}}, nil); err == nil {
		t.Fatal("New(empty config) = nil error; want refusal")
	}
	if _, err := New(baseConfig(), Deps{}, nil); err == nil {
		t.Fatal("New(no deps) = nil error; want refusal")
	}
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	wantError(t, b.do(t, req{method: http.MethodGet, path: "/nope"}), http.StatusNotFound)
	wantError(t, b.do(t, req{method: http.MethodGet, path: limioPath + "A-S1"}), http.StatusMethodNotAllowed)
}
