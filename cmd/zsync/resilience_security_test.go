package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora/zuoratest"
)

const (
	testHMACSecret   = "hmac-5ecret-over-the-raw-body-QX7"
	testZuoraSecret  = "zuora-client-5ecret-KP2"
	testLimioSecret  = "limio-client-5ecret-MV9"
	testWrongZSecret = "zuora-wrong-5ecret-TT4"
)

func sign(body string) string {
	m := hmac.New(sha256.New, []byte(testHMACSecret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// creds is one way of (mis)authenticating a request.
type creds struct {
	name string
	set  func(r *http.Request, body string)
}

func basicAuth(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

var (
	calloutOK = creds{"callout basic + hmac", func(r *http.Request, body string) {
		r.SetBasicAuth(testCalloutUser, testCalloutPass)
		r.Header.Set("X-Zuora-Signature", sign(body))
	}}
	operatorOK = creds{"operator bearer", func(r *http.Request, _ string) {
		r.Header.Set("Authorization", "Bearer "+testOperatorTok)
	}}
)

// badCallout are credentials every callout route must refuse.
var badCallout = []creds{
	{"none", func(*http.Request, string) {}},
	{"wrong password + hmac", func(r *http.Request, body string) {
		basicAuth(testCalloutUser, testCalloutPass+"x")(r)
		r.Header.Set("X-Zuora-Signature", sign(body))
	}},
	{"basic without hmac", func(r *http.Request, _ string) { basicAuth(testCalloutUser, testCalloutPass)(r) }},
	{"hmac without basic", func(r *http.Request, body string) { r.Header.Set("X-Zuora-Signature", sign(body)) }},
	{"hmac over a modified body", func(r *http.Request, body string) {
		basicAuth(testCalloutUser, testCalloutPass)(r)
		r.Header.Set("X-Zuora-Signature", sign(body+" "))
	}},
	{"hmac with another secret", func(r *http.Request, body string) {
		basicAuth(testCalloutUser, testCalloutPass)(r)
		m := hmac.New(sha256.New, []byte("not-the-secret"))
		m.Write([]byte(body))
		r.Header.Set("X-Zuora-Signature", hex.EncodeToString(m.Sum(nil)))
	}},
	{"operator token", func(r *http.Request, body string) {
		r.Header.Set("Authorization", "Bearer "+testOperatorTok)
		r.Header.Set("X-Zuora-Signature", sign(body))
	}},
}

// badOperator are credentials every operator route must refuse.
var badOperator = []creds{
	{"none", func(*http.Request, string) {}},
	{"wrong bearer", func(r *http.Request, _ string) { r.Header.Set("Authorization", "Bearer "+testOperatorTok+"x") }},
	{"bearer prefix", func(r *http.Request, _ string) { r.Header.Set("Authorization", "Bearer "+testOperatorTok[:10]) }},
	{"empty bearer", func(r *http.Request, _ string) { r.Header.Set("Authorization", "Bearer ") }},
	{"token as basic password", func(r *http.Request, _ string) { basicAuth("admin", testOperatorTok)(r) }},
	{"callout credentials", func(r *http.Request, body string) { calloutOK.set(r, body) }},
	{"token in the query", nil}, // the URL gets ?access_token=<token>
}

type route struct {
	method, path, body string
	optional           bool // not mounted in every build: a 404 with valid credentials skips it
}

func do(t *testing.T, base string, rt route, c creds) (int, string) {
	t.Helper()
	u := base + rt.path
	if c.set == nil {
		u += "?access_token=" + url.QueryEscape(testOperatorTok) + "&token=" + url.QueryEscape(testCalloutPass)
	}
	req, err := http.NewRequest(rt.method, u, strings.NewReader(rt.body))
	if err != nil {
		t.Fatal(err)
	}
	if rt.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.set != nil {
		c.set(req, rt.body)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", rt.method, rt.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestResilienceSecurity drives a `zsync serve` process configured with
// callout Basic + HMAC and an operator token: only /healthz is open, every
// other route refuses missing or wrong credentials, hostile ids are refused
// before any upstream call or enqueue, and no secret reaches the JSON logs of
// the ingress or of a worker that fails on a wrong Zuora secret.
func TestResilienceSecurity(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	zs := zuoratest.NewServer(t, zuoratest.WithCredentials("zsync", testZuoraSecret))
	ls := limiotest.NewServer(t, limiotest.WithCredentials("zsync", testLimioSecret))
	putSub(t, zs, 0, initialState())
	id := subNumber(0)

	addr := freeAddr(t)
	base := "http://" + addr
	env := upstreamEnv(rs, zs, ls, "ZSYNC_HTTP_ADDR="+addr, "ZSYNC_LOG_LEVEL=debug",
		"ZSYNC_CALLOUT_USERNAME="+testCalloutUser, "ZSYNC_CALLOUT_PASSWORD="+testCalloutPass,
		"ZSYNC_CALLOUT_HMAC_SECRET="+testHMACSecret, "ZSYNC_OPERATOR_TOKEN="+testOperatorTok)
	srv := startProc(t, "serve", env, "serve")
	waitHTTP(t, srv, base+"/healthz", 30*time.Second)

	calloutRoutes := []route{
		{method: http.MethodPost, path: "/api/plugins/zuora/sync/subscription/" + id, body: `{"eventType":"SubscriptionUpdated"}`},
		{method: http.MethodPost, path: "/v1/callouts/zuora", body: `{"subscriptionNumber":"` + id + `"}`},
	}
	operatorRoutes := []route{
		{method: http.MethodGet, path: "/readyz/detail"},
		{method: http.MethodGet, path: "/v1/subscriptions/" + id + "/sync"},
		{method: http.MethodPost, path: "/v1/subscriptions/" + id + "/sync"},
		{method: http.MethodGet, path: "/v1/subscriptions/" + id + "/plan"},
		{method: http.MethodGet, path: "/monitor"},
		{method: http.MethodGet, path: "/monitor/"},
		{method: http.MethodGet, path: "/monitor/api/queues"},
		{method: http.MethodPost, path: "/monitor/api/queues/callouts:pause"},
		{method: http.MethodGet, path: "/metrics", optional: true},
		{method: http.MethodPost, path: "/v1/resyncs", body: `{"ids":["` + id + `"]}`, optional: true},
		{method: http.MethodGet, path: "/v1/resyncs/job-1", optional: true},
	}

	if code, _ := do(t, base, route{method: http.MethodGet, path: "/healthz"}, creds{"none", func(*http.Request, string) {}}); code != http.StatusOK {
		t.Errorf("/healthz without credentials: %d; want 200", code)
	}
	keysBefore := redisKeys(t, rdb)
	for _, rt := range calloutRoutes {
		for _, c := range badCallout {
			if code, body := do(t, base, rt, c); code != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d %s; want 401", rt.method, rt.path, c.name, code, body)
			}
		}
	}
	for _, rt := range operatorRoutes {
		if rt.optional {
			// Probed with a GET (a valid POST would start a job).
			probe := rt
			probe.method, probe.body = http.MethodGet, ""
			if code, _ := do(t, base, probe, operatorOK); code == http.StatusNotFound {
				t.Logf("%s not mounted in this build", rt.path)
				continue
			}
		}
		for _, c := range badOperator {
			if code, body := do(t, base, rt, c); code != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d %s; want 401", rt.method, rt.path, c.name, code, body)
			}
		}
	}
	if keys := redisKeys(t, rdb); !slices.Equal(keys, keysBefore) {
		t.Errorf("refused requests changed Redis: keys %v, before %v", keys, keysBefore)
	}

	// Hostile ids, with valid credentials: 400 before any upstream call,
	// nothing enqueued.
	upstreamBefore := zs.Count("", "/") + ls.Count("", "/")
	hostile := []string{
		"../accounts/x", "..%2faccounts%2fx", "%2e%2e%2f", "%2e%2e%2faccounts", "A-S00000271%2f..%2f..",
		"A-S00000271%00", "A-S00000271%0d%0aX:1", "A-S00000271;x", "a-s00000271",
		url.PathEscape("A-S0000027é"), url.PathEscape("А-S00000271"), // Cyrillic А
		"A-S" + strings.Repeat("1", 100), "sub-" + strings.Repeat("a", 200),
	}
	for _, h := range hostile {
		rt := route{method: http.MethodPost, path: "/api/plugins/zuora/sync/subscription/" + h, body: "{}"}
		if code, body := do(t, base, rt, calloutOK); code != http.StatusBadRequest {
			t.Errorf("callout for %q: %d %s; want 400", h, code, body)
		}
		raw, err := url.PathUnescape(h)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]string{"subscriptionNumber": raw})
		rt = route{method: http.MethodPost, path: "/v1/callouts/zuora", body: string(b)}
		if code, body := do(t, base, rt, calloutOK); code != http.StatusBadRequest {
			t.Errorf("body callout for %q: %d %s; want 400", raw, code, body)
		}
		for _, op := range []route{
			{method: http.MethodGet, path: "/v1/subscriptions/" + h + "/plan"},
			{method: http.MethodPost, path: "/v1/subscriptions/" + h + "/sync"},
			{method: http.MethodGet, path: "/v1/subscriptions/" + h + "/sync"},
		} {
			code, body := do(t, base, op, operatorOK)
			// An id with a raw slash doesn't match the route at all.
			if code != http.StatusBadRequest && !(code == http.StatusNotFound && strings.Contains(raw, "/")) {
				t.Errorf("%s %s: %d %s; want 400", op.method, op.path, code, body)
			}
		}
	}
	if got := zs.Count("", "/") + ls.Count("", "/"); got != upstreamBefore {
		t.Errorf("hostile ids reached the sandboxes: %d requests, %d before", got, upstreamBefore)
	}
	if keys := redisKeys(t, rdb); !slices.Equal(keys, keysBefore) {
		t.Errorf("hostile ids changed Redis: keys %v, before %v", keys, keysBefore)
	}

	// The good paths work: a signed callout is enqueued, the operator reads.
	if code, body := do(t, base, calloutRoutes[0], calloutOK); code != http.StatusOK {
		t.Fatalf("signed callout: %d %s", code, body)
	}
	if code, body := do(t, base, route{method: http.MethodGet, path: "/readyz/detail"}, operatorOK); code != http.StatusOK {
		t.Errorf("/readyz/detail with the token: %d %s", code, body)
	}
	// Failures that carry upstream errors into the logs: a dry run while
	// Zuora fails, and a worker whose Zuora secret is wrong.
	zs.AddFault(sandbox.Fault{Path: "/v1/subscriptions/", Status: http.StatusInternalServerError, Count: 1})
	if code, body := do(t, base, route{method: http.MethodGet, path: "/v1/subscriptions/" + id + "/plan"}, operatorOK); code < 500 {
		t.Errorf("plan while Zuora fails: %d %s; want 5xx", code, body)
	}
	// A 401 is tried on three attempts before the task is archived (the
	// credentials may be rotating); a short backoff keeps that quick here.
	work := startProc(t, "work (wrong zuora secret)", append(env, "ZSYNC_ZUORA_CLIENT_SECRET="+testWrongZSecret,
		"ZSYNC_WORKER_RETRY_BASE=20ms", "ZSYNC_WORKER_RETRY_CAP=1s"), "work")
	eventually(t, 30*time.Second, "the sync to fail on the wrong secret", func() bool {
		code, body := do(t, base, route{method: http.MethodGet, path: "/v1/subscriptions/" + id + "/sync"}, operatorOK)
		var st struct{ Latest *worker.Record }
		return code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil && st.Latest != nil && st.Latest.Archived
	})
	work.stop(t, 30*time.Second)
	srv.stop(t, 30*time.Second) // JSON logs are buffered for up to a second: read them after the exit's flush

	secrets := map[string]string{
		"callout password": testCalloutPass, "hmac secret": testHMACSecret, "operator token": testOperatorTok,
		"zuora secret": testZuoraSecret, "wrong zuora secret": testWrongZSecret, "limio secret": testLimioSecret,
		"callout basic header": base64.StdEncoding.EncodeToString([]byte(testCalloutUser + ":" + testCalloutPass)),
	}
	for _, p := range []*proc{srv, work} {
		out := p.out.String()
		for name, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s logs contain the %s", p.name, name)
			}
		}
		lines := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if !json.Valid([]byte(line)) {
				t.Errorf("%s: log line is not JSON: %s", p.name, line)
				continue
			}
			lines++
		}
		t.Logf("%s: %d JSON log lines checked for %d secrets", p.name, lines, len(secrets))
	}
	if !strings.Contains(work.out.String(), "HTTP 401") {
		t.Errorf("the worker's logs do not show the authentication failure:\n%s", work.out.String())
	}
}

// redisKeys lists every key, sorted.
func redisKeys(t *testing.T, rdb *redis.Client) []string {
	t.Helper()
	keys, err := rdb.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}
