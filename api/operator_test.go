package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

func TestOperatorEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig(), func(d *Deps) { d.Planner = fakePlanner{} })
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	b.out.latest = map[string]*worker.Record{"A-S1": {Subscription: "A-S1", Outcome: syncer.Updated, At: at, TaskID: "A-S1:3"}}
	b.out.history = map[string][]worker.Record{"A-S1": {
		{Subscription: "A-S1", Outcome: syncer.Updated, At: at, TaskID: "A-S1:3"}, // the latest, stored at the head too
		{Subscription: "A-S1", Outcome: syncer.Unchanged, At: at.Add(-time.Hour)},
	}}

	t.Run("manual sync", func(t *testing.T) {
		rec := b.do(t, req{method: http.MethodPost, path: "/v1/subscriptions/A-S1/sync", bearer: opToken,
			ct: "application/json", body: `{"Source__c":"shop"}`}) // a body never loop-guards a manual sync
		wantStatus(t, rec, http.StatusAccepted)
		if m := decode(t, rec); m["success"] != true || m["status"] != "enqueued" {
			t.Fatalf("body = %s", rec.Body.String())
		}
		calls := b.enq.Calls()
		if len(calls) == 1 {
			calls[0].Trig.Received = time.Time{} // TestTriggersStampedWhenReceived checks it
		}
		if len(calls) != 1 || calls[0].Trig != (syncer.Trigger{Source: syncer.SourceManual}) || calls[0].Queue != worker.QueueCallouts {
			t.Fatalf("enqueued %+v", calls)
		}
	})
	t.Run("status", func(t *testing.T) {
		rec := b.do(t, req{method: http.MethodGet, path: "/v1/subscriptions/A-S1/sync?n=1", user: opUser, pass: opPass})
		wantStatus(t, rec, http.StatusOK)
		var got statusResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Subscription != "A-S1" || got.Latest == nil || got.Latest.TaskID != "A-S1:3" || len(got.History) != 1 ||
			got.History[0].Outcome != syncer.Unchanged {
			t.Fatalf("status = %s; want the latest, and the one record before it (the latest not repeated)", rec.Body.String())
		}
		if strings.Count(rec.Body.String(), `"changes":[]`) != 2 {
			t.Errorf("status = %s; want \"changes\":[] on both records", rec.Body.String())
		}
	})
	t.Run("status unknown", func(t *testing.T) {
		wantError(t, b.do(t, req{method: http.MethodGet, path: "/v1/subscriptions/A-S2/sync", bearer: opToken}), http.StatusNotFound)
	})
	t.Run("status bad n", func(t *testing.T) {
		wantError(t, b.do(t, req{method: http.MethodGet, path: "/v1/subscriptions/A-S1/sync?n=x", bearer: opToken}), http.StatusBadRequest)
	})
	t.Run("plan", func(t *testing.T) {
		rec := b.do(t, req{method: http.MethodGet, path: "/v1/subscriptions/A-S1/plan", bearer: opToken})
		wantStatus(t, rec, http.StatusOK)
		if m := decode(t, rec); m["outcome"] != "updated" || m["subscription"] != "A-S1" {
			t.Fatalf("plan = %s", rec.Body.String())
		}
		wantError(t, b.do(t, req{method: http.MethodGet, path: "/v1/subscriptions/A-S404/plan", bearer: opToken}), http.StatusNotFound)
	})
	t.Run("plan without planner", func(t *testing.T) {
		n := setup(t, baseConfig())
		wantError(t, n.do(t, req{method: http.MethodGet, path: "/v1/subscriptions/A-S1/plan", bearer: opToken}), http.StatusNotImplemented)
	})
	t.Run("outcome store down", func(t *testing.T) {
		d := setup(t, baseConfig())
		d.out.err = errors.New("redis down")
		wantError(t, d.do(t, req{method: http.MethodGet, path: "/v1/subscriptions/A-S1/sync", bearer: opToken}), http.StatusServiceUnavailable)
	})
}

func TestOperatorCSRF(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	tests := []struct {
		name   string
		r      req
		header map[string]string
		want   int
	}{
		{"basic, cross-site", req{user: opUser, pass: opPass}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"basic, same-site", req{user: opUser, pass: opPass}, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"basic, foreign origin", req{user: opUser, pass: opPass}, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"basic, same-origin", req{user: opUser, pass: opPass}, map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusAccepted},
		{"basic, own origin", req{user: opUser, pass: opPass}, map[string]string{"Origin": "http://example.com"}, http.StatusAccepted},
		{"basic, no browser headers (curl)", req{user: opUser, pass: opPass}, nil, http.StatusAccepted},
		{"bearer, cross-site", req{bearer: opToken}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusAccepted},
	}
	for _, tt := range tests {
		r := tt.r
		r.method, r.path, r.header = http.MethodPost, "/v1/subscriptions/A-S1/sync", tt.header
		if rec := b.do(t, r); rec.Code != tt.want {
			t.Errorf("%s: status = %d; want %d", tt.name, rec.Code, tt.want)
		}
	}
	// asynqmon's UI POSTs are covered too.
	mon := req{method: http.MethodPost, path: "/monitor/api/queues/callouts:pause", user: opUser, pass: opPass,
		header: map[string]string{"Sec-Fetch-Site": "cross-site"}}
	wantError(t, b.do(t, mon), http.StatusForbidden)
}

func TestMonitorAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	for _, p := range []string{"/monitor", "/monitor/", "/monitor/api/queues"} {
		rec := b.do(t, req{method: http.MethodGet, path: p, user: opUser, pass: opPass})
		wantStatus(t, rec, http.StatusOK)
		if rec.Body.String() != "asynqmon" {
			t.Fatalf("%s served %q", p, rec.Body.String())
		}
	}
	b.mu.Lock()
	got := strings.Join(b.monitorPaths, ",")
	b.mu.Unlock()
	if got != "/monitor,/monitor/,/monitor/api/queues" {
		t.Fatalf("asynqmon saw paths %s; want the full paths (prefix not stripped)", got)
	}
	rec := b.do(t, req{method: http.MethodGet, path: "/monitor"})
	wantError(t, rec, http.StatusUnauthorized)
	if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
		t.Fatalf("anonymous /monitor: WWW-Authenticate = %q; want a Basic challenge for browsers", got)
	}
	rec = b.do(t, req{method: http.MethodGet, path: "/metrics", bearer: opToken})
	wantStatus(t, rec, http.StatusOK)
	if !strings.Contains(rec.Body.String(), "# metrics") {
		t.Fatalf("/metrics = %q", rec.Body.String())
	}
}
