package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The worker's metrics listener takes the same operator credentials as the
// ingress, and serves nothing but GET /metrics.
func TestMetricsOnly(t *testing.T) {
	t.Parallel()
	cfg := Config{OperatorToken: "op-token", OperatorUsername: "ops", OperatorPassword: "ops-pass"}
	h := MetricsOnly(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	tests := []struct {
		name, method, path string
		auth               func(*http.Request)
		want               int
	}{
		{"anonymous", "GET", "/metrics", func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong token", "GET", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusUnauthorized},
		{"token", "GET", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer op-token") }, http.StatusOK},
		{"basic", "GET", "/metrics", func(r *http.Request) { r.SetBasicAuth("ops", "ops-pass") }, http.StatusOK},
		{"wrong basic", "GET", "/metrics", func(r *http.Request) { r.SetBasicAuth("ops", "x") }, http.StatusUnauthorized},
		{"other path", "GET", "/v1/x", func(r *http.Request) { r.Header.Set("Authorization", "Bearer op-token") }, http.StatusNotFound},
		{"post", "POST", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer op-token") }, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		tt.auth(req)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: %d; want %d", tt.name, rec.Code, tt.want)
		}
		if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without a challenge", tt.name)
		}
	}
}
