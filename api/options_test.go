package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// optionsConfig has every route group registered: callouts with Basic and
// OAuth (the token endpoint), the operator API, /metrics and /monitor.
func optionsConfig() Config {
	cfg := baseConfig()
	cfg.OAuthClients = []OAuthClient{{ID: oauthID, Secrets: []string{oauthSecret}}}
	cfg.OAuthSigningKeys = []string{signKeyNew}
	return cfg
}

// TestOptionsIsNotAllowed: OPTIONS on a route that doesn't serve it is a 405
// with Allow, as any other unserved method, credentials or not; echo's own
// answer was a 204 before any authentication ran.
func TestOptionsIsNotAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t, optionsConfig())
	// One path per route group, with the methods it serves.
	type route struct {
		group, path string
		allow       []string
	}
	groups := []route{
		{"callout by path", limioPath + "A-S00000271", []string{http.MethodPost}},
		{"callout by body", "/v1/callouts/zuora", []string{http.MethodPost}},
		{"limio events", LimioEventsPath, []string{http.MethodPost}},
		{"token", TokenPath, []string{http.MethodPost}},
		{"manual sync", "/v1/subscriptions/A-S1/sync", []string{http.MethodGet, http.MethodPost}},
		{"plan", "/v1/subscriptions/A-S1/plan", []string{http.MethodGet}},
		{"account", "/v1/accounts/A00000001/sync", []string{http.MethodGet}},
		{"resyncs", "/v1/resyncs", []string{http.MethodPost}},
		{"resync progress", "/v1/resyncs/rs-20260101T000000-0000abcd", []string{http.MethodGet}},
		{"check", "/v1/check", []string{http.MethodGet}},
		{"metrics", "/metrics", []string{http.MethodGet}},
		{"ready detail", pathReadyDetail, []string{http.MethodGet}},
		{"healthz", pathHealth, []string{http.MethodGet}},
		{"readyz", pathReady, []string{http.MethodGet}},
	}
	// Every registered route without an OPTIONS handler of its own is in
	// the table, so a new one can't slip past.
	served := map[string]bool{}
	for _, r := range b.e.Routes() {
		if r.Method == http.MethodOptions {
			served[r.Path] = true
		}
	}
	for _, r := range b.e.Routes() {
		if served[r.Path] {
			continue
		}
		if !slices.ContainsFunc(groups, func(g route) bool { return routeMatches(r.Path, g.path) }) {
			t.Errorf("route %s %s is not in the table", r.Method, r.Path)
		}
	}

	for _, g := range groups {
		for name, cred := range map[string]req{
			"anonymous": {},
			"operator":  {bearer: opToken},
			"callout":   {user: calloutUser, pass: calloutPass},
		} {
			cred.method, cred.path = http.MethodOptions, g.path
			rec := b.do(t, cred)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s, %s: OPTIONS %s = %d; want 405", g.group, name, g.path, rec.Code)
				continue
			}
			wantError(t, rec, http.StatusMethodNotAllowed)
			allow := strings.Split(rec.Header().Get("Allow"), ", ")
			slices.Sort(allow)
			if !slices.Equal(allow, g.allow) {
				t.Errorf("%s: Allow = %q; want %q", g.group, rec.Header().Get("Allow"), g.allow)
			}
		}
		// Any other unserved method answers the same way.
		rec := b.do(t, req{method: http.MethodDelete, path: g.path, bearer: opToken})
		wantError(t, rec, http.StatusMethodNotAllowed)
		if strings.Contains(rec.Header().Get("Allow"), http.MethodOptions) {
			t.Errorf("%s: DELETE's Allow = %q lists OPTIONS", g.group, rec.Header().Get("Allow"))
		}
	}
	if n := len(b.enq.Calls()); n != 0 {
		t.Errorf("OPTIONS enqueued %d syncs", n)
	}
}

// routeMatches reports whether path is served by the route pattern.
func routeMatches(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], ":") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// TestOptionsOnMonitorNeedsCredentials: /monitor serves every method
// (asynqmon), OPTIONS included, behind the operator credentials.
func TestOptionsOnMonitorNeedsCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t, optionsConfig())
	for _, path := range []string{MonitorPath, MonitorPath + "/api/queues"} {
		rec := b.do(t, req{method: http.MethodOptions, path: path})
		wantError(t, rec, http.StatusUnauthorized)
		if rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("OPTIONS %s: no challenge", path)
		}
	}
	b.mu.Lock()
	n := len(b.monitorPaths)
	b.mu.Unlock()
	if n != 0 {
		t.Fatalf("asynqmon served %d OPTIONS without credentials", n)
	}
	rec := b.do(t, req{method: http.MethodOptions, path: MonitorPath + "/api/queues", bearer: opToken})
	wantStatus(t, rec, http.StatusOK)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.Equal(b.monitorPaths, []string{MonitorPath + "/api/queues"}) {
		t.Fatalf("asynqmon saw %v", b.monitorPaths)
	}
}
