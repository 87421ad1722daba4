package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The open probes answer a status and nothing else, even when a check fails
// with a message that names the infrastructure; the detail is for operators.
func TestProbesOpenAndRevealNothing(t *testing.T) {
	t.Parallel()
	redisErr := errors.New("dial tcp 10.1.2.3:6379: connection refused")
	b := setup(t, baseConfig(), func(d *Deps) {
		d.Ready = func(context.Context) error { return redisErr }
		d.Checks = []Check{{Name: "extra", Run: func(context.Context) error { return nil }}}
	})
	rec := b.do(t, req{method: http.MethodGet, path: "/readyz"})
	wantStatus(t, rec, http.StatusServiceUnavailable)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"status":"not ready"}` {
		t.Errorf("/readyz body = %s; want only the status", got)
	}
	rec = b.do(t, req{method: http.MethodGet, path: "/healthz"})
	wantStatus(t, rec, http.StatusOK)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"status":"ok"}` {
		t.Errorf("/healthz body = %s", got)
	}

	wantError(t, b.do(t, req{method: http.MethodGet, path: "/readyz/detail"}), http.StatusUnauthorized)
	rec = b.do(t, req{method: http.MethodGet, path: "/readyz/detail", bearer: opToken})
	wantStatus(t, rec, http.StatusServiceUnavailable)
	m := decode(t, rec)
	checks, _ := m["checks"].(map[string]any)
	if m["status"] != "not ready" || checks["extra"] != "ok" || !strings.Contains(checks["redis"].(string), "connection refused") {
		t.Errorf("/readyz/detail = %s; want each check named with its result", rec.Body.String())
	}
	// The cause is in the access log line of the failed probe.
	found := false
	for _, e := range b.logs.All() {
		if e.ContextMap()["route"] == "/readyz" && strings.Contains(e.ContextMap()["cause"].(string), "connection refused") {
			found = true
		}
	}
	if !found {
		t.Error("the failed /readyz was not logged with its cause")
	}
}

// The worker's listener: the same probes, /metrics behind credentials.
func TestWorkerHandler(t *testing.T) {
	t.Parallel()
	cfg := Config{OperatorToken: "op-token"}
	running := errors.New("asynq server not running")
	h := WorkerHandler(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("m")) }),
		[]Check{
			{Name: "redis", Run: func(context.Context) error { return nil }},
			{Name: "worker", Run: func(context.Context) error { return running }},
		})
	get := func(path, token string) (int, string) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	if c, b := get("/healthz", ""); c != http.StatusOK || b != `{"status":"ok"}` {
		t.Errorf("/healthz = %d %s", c, b)
	}
	if c, b := get("/readyz", ""); c != http.StatusServiceUnavailable || b != `{"status":"not ready"}` {
		t.Errorf("/readyz while the server is not running = %d %s", c, b)
	}
	if c, _ := get("/readyz/detail", ""); c != http.StatusUnauthorized {
		t.Errorf("/readyz/detail anonymous = %d; want 401", c)
	}
	if c, b := get("/readyz/detail", "op-token"); c != http.StatusServiceUnavailable || !strings.Contains(b, `"worker":"failed: asynq server not running"`) {
		t.Errorf("/readyz/detail = %d %s", c, b)
	}
	running = nil
	if c, b := get("/readyz", ""); c != http.StatusOK || b != `{"status":"ready"}` {
		t.Errorf("/readyz when running = %d %s", c, b)
	}
	if c, _ := get("/metrics", ""); c != http.StatusUnauthorized {
		t.Errorf("/metrics anonymous = %d; want 401", c)
	}
	if c, b := get("/metrics", "op-token"); c != http.StatusOK || b != "m" {
		t.Errorf("/metrics = %d %s", c, b)
	}
	if c, _ := get("/other", "op-token"); c != http.StatusNotFound {
		t.Errorf("/other = %d; want 404", c)
	}
}
