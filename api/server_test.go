package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // testing the sha1 option
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

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

func TestEveryEndpointButHealthzNeedsCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	tests := []struct {
		method, path string
		callout      bool
	}{
		{http.MethodPost, limioPath + "A-S00000271", true},
		{http.MethodPost, "/v1/callouts/zuora", true},
		{http.MethodPost, LimioEventsPath, true},
		{http.MethodPost, "/v1/subscriptions/A-S1/sync", false},
		{http.MethodGet, "/v1/subscriptions/A-S1/sync", false},
		{http.MethodGet, "/v1/subscriptions/A-S1/plan", false},
		{http.MethodGet, "/readyz/detail", false},
		{http.MethodGet, "/metrics", false},
		{http.MethodGet, "/monitor", false},
		{http.MethodGet, "/monitor/api/queues", false},
		{http.MethodPost, "/monitor/api/queues/callouts/archived_tasks:run_all", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			body := `{"subscriptionNumber":"A-S1"}`
			wrong := []req{
				{},                                        // anonymous
				{user: calloutUser, pass: "nope"},         // wrong password
				{user: "nope", pass: calloutPass},         // wrong user
				{bearer: "nope"},                          // wrong token
				{user: opUser, pass: calloutPass},         // mixed
				{bearer: calloutPass},                     // a callout secret as a token
				{user: calloutUser + "\x00", pass: "x\n"}, // junk
			}
			if tt.callout {
				wrong = append(wrong, req{bearer: opToken}, req{user: opUser, pass: opPass})
			} else {
				wrong = append(wrong, req{user: calloutUser, pass: calloutPass})
			}
			for i, w := range wrong {
				w.method, w.path, w.ct, w.body = tt.method, tt.path, "application/json", body
				rec := b.do(t, w)
				if rec.Code != http.StatusUnauthorized {
					t.Fatalf("credentials #%d: status = %d; want 401", i, rec.Code)
				}
				wantError(t, rec, http.StatusUnauthorized)
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Fatalf("credentials #%d: no WWW-Authenticate", i)
				}
			}
		})
	}
	t.Run("healthz is open", func(t *testing.T) {
		t.Parallel()
		wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/healthz"}), http.StatusOK)
	})
	t.Cleanup(func() {
		if n := len(b.enq.Calls()); n != 0 {
			t.Errorf("%d enqueued by unauthenticated requests", n)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if n := len(b.monitorPaths); n != 0 {
			t.Errorf("asynqmon served %d unauthenticated requests", n)
		}
	})
}

func TestBasicChallenge(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	body := `{"eventType":"RenewSubscription","subscriptionNumber":"A-S00000271"}`
	// Zuora's first attempt carries no credentials and waits for the challenge.
	rec := b.do(t, req{method: http.MethodPost, path: limioPath + "A-S00000271", ct: "application/json", body: body})
	wantError(t, rec, http.StatusUnauthorized)
	if got := rec.Header().Get("WWW-Authenticate"); got != `Basic realm="zsync"` {
		t.Fatalf("WWW-Authenticate = %q; want Basic realm=\"zsync\"", got)
	}
	if n := len(b.enq.Calls()); n != 0 {
		t.Fatalf("enqueued %d before credentials", n)
	}
	// Then it resends with them.
	rec = b.do(t, callout(limioPath+"A-S00000271", "application/json", body))
	wantStatus(t, rec, http.StatusOK)
	m := decode(t, rec)
	if m["success"] != true || m["status"] != "enqueued" || m["subscription"] != "A-S00000271" || m["task_id"] != "A-S00000271:0" {
		t.Fatalf("body = %s", rec.Body.String())
	}
	calls := b.enq.Calls()
	if len(calls) != 1 || calls[0].Key != "A-S00000271" || calls[0].Queue != worker.QueueCallouts || calls[0].Trig.Source != syncer.SourceCallout {
		t.Fatalf("enqueued %+v", calls)
	}
}

func sign(newHash func() hash.Hash, enc string, body string) string {
	m := hmac.New(newHash, []byte(hmacSecret))
	m.Write([]byte(body))
	if enc == "base64" {
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return hex.EncodeToString(m.Sum(nil))
}

func TestHMAC(t *testing.T) {
	t.Parallel()
	body := `{"subscriptionNumber":"A-S00000271","eventType":"CancelSubscription"}`
	tests := []struct {
		alg, enc string
		newHash  func() hash.Hash
	}{
		{"sha256", "hex", sha256.New},
		{"sha256", "base64", sha256.New},
		{"sha512", "hex", sha512.New},
		{"sha512", "base64", sha512.New},
		{"sha1", "hex", sha1.New},
	}
	for _, tt := range tests {
		t.Run(tt.alg+"/"+tt.enc, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig()
			cfg.CalloutUsername, cfg.CalloutPassword = "", "" // HMAC only
			cfg.HMACSecret, cfg.HMACAlgorithm, cfg.HMACEncoding = hmacSecret, tt.alg, tt.enc
			cfg.HMACHeader = "X-Sig"
			b := setup(t, cfg)
			good := sign(tt.newHash, tt.enc, body)
			post := func(sig, body string) *httptest.ResponseRecorder {
				r := req{method: http.MethodPost, path: "/v1/callouts/zuora", ct: "application/json", body: body}
				if sig != "" {
					r.header = map[string]string{"X-Sig": sig}
				}
				return b.do(t, r)
			}
			wantStatus(t, post(good, body), http.StatusOK)
			wantStatus(t, post(tt.alg+"="+good, body), http.StatusOK)
			if tt.enc == "hex" {
				wantStatus(t, post(strings.ToUpper(good), body), http.StatusOK)
			}
			n := len(b.enq.Calls())
			for name, rec := range map[string]*httptest.ResponseRecorder{
				"missing":          post("", body),
				"garbage":          post("not-a-signature", body),
				"modified body":    post(good, strings.Replace(body, "Cancel", "Renew", 1)),
				"whitespace added": post(good, body+" "),
				"other secret":     post(sign2(tt.newHash, tt.enc, body), body),
				"truncated":        post(good[:len(good)-4], body),
			} {
				if rec.Code != http.StatusUnauthorized {
					t.Errorf("%s: status = %d; want 401", name, rec.Code)
				}
			}
			if got := len(b.enq.Calls()); got != n {
				t.Fatalf("bad signatures enqueued %d", got-n)
			}
		})
	}
}

// With HMAC alone the path's id is not signed: a signed body replayed to
// another subscription's path, or an empty body, is refused; a body naming
// the path's subscription is taken.
func TestHMACOnlyPathMustMatchSignedBody(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.CalloutUsername, cfg.CalloutPassword = "", ""
	cfg.HMACSecret = hmacSecret
	b := setup(t, cfg)
	body := `{"subscriptionNumber":"A-S00000001"}`
	post := func(path, body string) int {
		return b.do(t, req{method: http.MethodPost, path: path, ct: "application/json", body: body,
			header: map[string]string{"X-Zuora-Signature": sign(sha256.New, "hex", body)}}).Code
	}
	if code := post(limioPath+"A-S00000001", body); code != http.StatusOK {
		t.Fatalf("matching path and body: %d", code)
	}
	if code := post(limioPath+"A-S99999999", body); code != http.StatusBadRequest {
		t.Errorf("signed body replayed to another path: %d; want 400", code)
	}
	if code := post(limioPath+"A-S99999999", ""); code != http.StatusBadRequest {
		t.Errorf("empty signed body on the path endpoint: %d; want 400", code)
	}
	if calls := b.enq.Calls(); len(calls) != 1 || calls[0].Key != "A-S00000001" {
		t.Fatalf("enqueued %+v; want only A-S00000001", calls)
	}
}

func sign2(newHash func() hash.Hash, enc, body string) string {
	m := hmac.New(newHash, []byte("another secret"))
	m.Write([]byte(body))
	if enc == "base64" {
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return hex.EncodeToString(m.Sum(nil))
}

func TestBasicAndHMACBothRequired(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.HMACSecret = hmacSecret
	b := setup(t, cfg)
	body := `{"subscriptionNumber":"A-S1"}`
	sig := map[string]string{"X-Zuora-Signature": sign(sha256.New, "hex", body)}
	r := callout("/v1/callouts/zuora", "application/json", body)
	r.header = sig
	wantStatus(t, b.do(t, r), http.StatusOK)

	noSig := callout("/v1/callouts/zuora", "application/json", body)
	wantError(t, b.do(t, noSig), http.StatusUnauthorized)

	badPass := r
	badPass.pass = "wrong"
	wantError(t, b.do(t, badPass), http.StatusUnauthorized)

	noBasic := r
	noBasic.user = ""
	rec := b.do(t, noBasic)
	wantError(t, rec, http.StatusUnauthorized)
	if rec.Header().Get("WWW-Authenticate") != `Basic realm="zsync"` {
		t.Fatalf("no Basic challenge with HMAC configured too")
	}
	if n := len(b.enq.Calls()); n != 1 {
		t.Fatalf("enqueued %d; want 1", n)
	}
}

func TestCalloutBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, ct, body string
		header               map[string]string
		wantKey              string
		wantTrig             syncer.Trigger
	}{
		{
			name: "no body", path: limioPath + "A-S00000271",
			wantKey: "A-S00000271", wantTrig: syncer.Trigger{Source: "callout"},
		},
		{
			name: "json template", path: limioPath + "sub-5c3d1a2b9f",
			ct:     "application/json",
			body:   `{"eventType":"RenewSubscription","subscriptionNumber":"A-S9","orderNumber":"O-00000042","createdById":"u1","autoGenerated":"false"}`,
			header: map[string]string{"Zuora-Notification-Id": "n-123"},
			// The path wins over the body's subscription number.
			wantKey:  "sub-5c3d1a2b9f",
			wantTrig: syncer.Trigger{Source: "callout", EventType: "RenewSubscription", OrderNumber: "O-00000042", CreatedByID: "u1", NotificationID: "n-123"},
		},
		{
			name: "xml", path: limioPath + "3V053CN9SFIG", ct: "text/xml; charset=utf-8",
			body:     `<callout><parameter name="EventType">Renewal</parameter><parameter name="OrderNumber">O-7</parameter><parameter name="Source__c">api</parameter></callout>`,
			wantKey:  "3V053CN9SFIG",
			wantTrig: syncer.Trigger{Source: "callout", EventType: "Renewal", OrderNumber: "O-7", OrderSource: "api"},
		},
		{
			name: "form", path: limioPath + "A-S1", ct: "application/x-www-form-urlencoded",
			body:     "eventType=CancelSubscription&InitiatedSource__c=zuora-ui",
			wantKey:  "A-S1",
			wantTrig: syncer.Trigger{Source: "callout", EventType: "CancelSubscription", InitiatedSource: "zuora-ui"},
		},
		{
			name: "body endpoint json", path: "/v1/callouts/zuora", ct: "application/json",
			body:     `{"SubscriptionNumber":"A-S00000271","eventType":"CancelSubscription"}`,
			wantKey:  "A-S00000271",
			wantTrig: syncer.Trigger{Source: "callout", EventType: "CancelSubscription"},
		},
		{
			name: "body endpoint xml", path: "/v1/callouts/zuora", ct: "application/xml",
			body:     `<callout><parameter name="subscriptionName">A-S2</parameter></callout>`,
			wantKey:  "A-S2",
			wantTrig: syncer.Trigger{Source: "callout"},
		},
		{
			name: "body endpoint form", path: "/v1/callouts/zuora", ct: "application/x-www-form-urlencoded",
			body:     "subscriptionNumber=A-S3&orderNumber=O-3",
			wantKey:  "A-S3",
			wantTrig: syncer.Trigger{Source: "callout", OrderNumber: "O-3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, baseConfig())
			r := callout(tt.path, tt.ct, tt.body)
			r.header = tt.header
			rec := b.do(t, r)
			wantStatus(t, rec, http.StatusOK)
			if m := decode(t, rec); m["success"] != true || m["subscription"] != tt.wantKey {
				t.Fatalf("body = %s", rec.Body.String())
			}
			calls := b.enq.Calls()
			if len(calls) != 1 {
				t.Fatalf("enqueued %d; want 1", len(calls))
			}
			calls[0].Trig.Received = time.Time{} // TestTriggersStampedWhenReceived checks it
			if calls[0].Key != tt.wantKey || calls[0].Trig != tt.wantTrig || calls[0].Queue != worker.QueueCallouts {
				t.Fatalf("Enqueue(%q, %+v, %q); want (%q, %+v, callouts)", calls[0].Key, calls[0].Trig, calls[0].Queue, tt.wantKey, tt.wantTrig)
			}
		})
	}
}

func TestCoalescedAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	b.enq.status = worker.Coalesced
	rec := b.do(t, callout(limioPath+"A-S1", "", ""))
	wantStatus(t, rec, http.StatusOK)
	if m := decode(t, rec); m["status"] != "coalesced" || m["task_id"] != "A-S1:0" {
		t.Fatalf("body = %s", rec.Body.String())
	}
}

func TestCalloutRejectsBadInput(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.MaxBodyBytes = 2048
	b := setup(t, cfg)
	big := `{"subscriptionNumber":"A-S1","pad":"` + strings.Repeat("x", 4096) + `"}`
	tests := []struct {
		name string
		r    req
		want int
	}{
		{"malformed json", callout(limioPath+"A-S1", "application/json", `{"eventType":`), http.StatusBadRequest},
		{"json array", callout(limioPath+"A-S1", "application/json", `[]`), http.StatusBadRequest},
		{"malformed xml", callout(limioPath+"A-S1", "application/xml", `<callout><parameter>`), http.StatusBadRequest},
		{"unknown type", callout(limioPath+"A-S1", "text/csv", "a,b"), http.StatusUnsupportedMediaType},
		{"multipart", callout("/v1/callouts/zuora", "multipart/form-data; boundary=z", "--z--"), http.StatusUnsupportedMediaType},
		{"too big", callout(limioPath+"A-S1", "application/json", big), http.StatusRequestEntityTooLarge},
		{"too big, body endpoint", callout("/v1/callouts/zuora", "application/json", big), http.StatusRequestEntityTooLarge},
		{"no subscription in body", callout("/v1/callouts/zuora", "application/json", `{"eventType":"x"}`), http.StatusBadRequest},
		{"no body on body endpoint", callout("/v1/callouts/zuora", "", ""), http.StatusBadRequest},
		{"bad subscription in body", callout("/v1/callouts/zuora", "application/json", `{"subscriptionNumber":"../accounts/x"}`), http.StatusBadRequest},
		{"bad order number", callout(limioPath+"A-S1", "application/json", `{"orderNumber":"O-1/../../x"}`), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, b.do(t, tt.r), tt.want)
		})
	}
	t.Run("too big without Content-Length", func(t *testing.T) {
		t.Parallel()
		hr := httptest.NewRequest(http.MethodPost, limioPath+"A-S1", io.MultiReader(strings.NewReader(big)))
		hr.ContentLength = -1
		hr.Header.Set("Content-Type", "application/json")
		hr.SetBasicAuth(calloutUser, calloutPass)
		rec := httptest.NewRecorder()
		b.e.ServeHTTP(rec, hr)
		wantError(t, rec, http.StatusRequestEntityTooLarge)
	})
	t.Cleanup(func() {
		if n := len(b.enq.Calls()); n != 0 {
			t.Errorf("bad input enqueued %d", n)
		}
	})
}

func TestEnqueueFailureIs503(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	b.enq.err = errors.New("dial tcp: connection refused")
	for _, r := range []req{
		callout(limioPath+"A-S1", "", ""),
		callout("/v1/callouts/zuora", "application/json", `{"subscriptionNumber":"A-S1"}`),
		{method: http.MethodPost, path: "/v1/subscriptions/A-S1/sync", bearer: opToken},
	} {
		rec := b.do(t, r)
		wantError(t, rec, http.StatusServiceUnavailable)
		if m := decode(t, rec); m["error"] != "queue unavailable" {
			t.Fatalf("error = %v", m["error"])
		}
	}
	lines := b.logs.FilterMessage("request").FilterField(zap.String("cause", "enqueue: dial tcp: connection refused")).All()
	if len(lines) != 3 || lines[0].Level != zapcore.ErrorLevel {
		t.Fatalf("%d error access lines with the cause; want 3", len(lines))
	}
}

func TestLoopGuard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ct, body string
		skip           bool
	}{
		{"Source__c shop", "application/json", `{"Source__c":"shop"}`, true},
		{"InitiatedSource__c Salesforce", "application/json", `{"InitiatedSource__c":" Salesforce "}`, true},
		{"source", "application/json", `{"source":"SHOP"}`, true},
		{"initiatedSource form", "application/x-www-form-urlencoded", "initiatedSource=salesforce", true},
		{"xml source", "application/xml", `<callout><parameter name="Source__c">shop</parameter></callout>`, true},
		{"integration user", "application/json", `{"createdById":"2C92C0F8INTEGRATION"}`, true},
		{"other source", "application/json", `{"Source__c":"zuora-ui","createdById":"someone"}`, false},
		{"only an order number: the worker checks the order", "application/json", `{"orderNumber":"O-00000042"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, baseConfig())
			r := callout(limioPath+"A-S00000271", tt.ct, tt.body)
			r.header = map[string]string{"Zuora-Notification-Id": "n-loop"}
			rec := b.do(t, r)
			wantStatus(t, rec, http.StatusOK)
			m := decode(t, rec)
			enq, skipped := b.enq.Calls(), b.out.Skipped()
			if !tt.skip {
				if m["status"] != "enqueued" || len(enq) != 1 || len(skipped) != 0 {
					t.Fatalf("body %s, enqueued %d, skipped %d; want enqueued", rec.Body.String(), len(enq), len(skipped))
				}
				if strings.Contains(tt.body, "orderNumber") && enq[0].Trig.OrderNumber != "O-00000042" {
					t.Fatalf("Trigger.OrderNumber = %q", enq[0].Trig.OrderNumber)
				}
				return
			}
			if m["success"] != true || m["status"] != "skipped" || len(enq) != 0 || len(skipped) != 1 {
				t.Fatalf("body %s, enqueued %d, skipped %d; want skipped", rec.Body.String(), len(enq), len(skipped))
			}
			if skipped[0].Key != "A-S00000271" || skipped[0].Trig.Source != syncer.SourceCallout || skipped[0].Trig.NotificationID != "n-loop" {
				t.Fatalf("RecordSkipped(%+v)", skipped[0])
			}
		})
	}
}

func TestIDValidationThroughRouter(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	bad := []string{
		"..%2Faccounts%2Fx",
		"%2e%2e%2f",
		"%2E%2E%2Faccounts",
		"..",
		"../accounts/x",
		"A-S1%2F..%2Fx",
		"A-S1/extra",
		"A-S1%20",
		"A%20S1",
		"A-S1%00",
		"%C3%A9A-S1",
		"a-s1",
		"sub-" + strings.Repeat("a", 61),
		"",
	}
	for _, id := range bad {
		rec := b.do(t, callout(limioPath+id, "", ""))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("callout id %q: status = %d; want 400", id, rec.Code)
		}
	}
	for _, id := range []string{"..%2Faccounts%2Fx", "%2e%2e%2f", "A-S1%20", "%C3%A9", "a-s1"} {
		for _, r := range []req{
			{method: http.MethodPost, path: "/v1/subscriptions/" + id + "/sync", bearer: opToken},
			{method: http.MethodGet, path: "/v1/subscriptions/" + id + "/sync", bearer: opToken},
			{method: http.MethodGet, path: "/v1/subscriptions/" + id + "/plan", bearer: opToken},
		} {
			if rec := b.do(t, r); rec.Code != http.StatusBadRequest {
				t.Errorf("%s %s: status = %d; want 400", r.method, r.path, rec.Code)
			}
		}
	}
	// Unencoded traversal doesn't even reach an operator route.
	if rec := b.do(t, req{method: http.MethodPost, path: "/v1/subscriptions/../accounts/x/sync", bearer: opToken}); rec.Code < 400 {
		t.Errorf("traversal on operator route: status = %d", rec.Code)
	}
	if n := len(b.enq.Calls()); n != 0 {
		t.Fatalf("invalid ids enqueued %d", n)
	}
}

func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.HMACSecret = hmacSecret
	b := setup(t, cfg)
	body := `{"subscriptionNumber":"A-S1","note":"body-marker-xyz"}`
	sig := sign(sha256.New, "hex", body)
	withSig := callout("/v1/callouts/zuora", "application/json", body)
	withSig.header = map[string]string{"X-Zuora-Signature": sig, "Zuora-Notification-Id": "notif-1"}
	reqs := []req{
		withSig,
		callout("/v1/callouts/zuora", "application/json", body), // no signature
		{method: http.MethodPost, path: limioPath + "A-S1", user: calloutUser, pass: "wrong-" + calloutPass},
		{method: http.MethodGet, path: "/v1/subscriptions/A-S1/sync?token=" + opToken, bearer: opToken},
		{method: http.MethodGet, path: "/monitor", user: opUser, pass: opPass},
		{method: http.MethodGet, path: "/monitor", user: opUser, pass: "x" + opPass},
		{method: http.MethodGet, path: "/readyz/detail", bearer: "wrong-" + opToken},
	}
	for _, r := range reqs {
		b.do(t, r)
	}
	b.enq.err = errors.New("redis down")
	b.do(t, withSig)

	entries := b.logs.All()
	if len(entries) < len(reqs) {
		t.Fatalf("%d log entries for %d requests", len(entries), len(reqs))
	}
	secrets := []string{calloutPass, opToken, opPass, hmacSecret, sig, "body-marker-xyz",
		base64.StdEncoding.EncodeToString([]byte(calloutUser + ":" + calloutPass)),
		base64.StdEncoding.EncodeToString([]byte(opUser + ":" + opPass))}
	sawNotification := false
	for _, e := range entries {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line leaks %q: %s", s, line)
			}
		}
		if e.ContextMap()["notification_id"] == "notif-1" {
			sawNotification = true
		}
	}
	if !sawNotification {
		t.Errorf("no log line carries notification_id")
	}
}

func TestAccessLogOneLinePerRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	rec := b.do(t, callout(limioPath+"A-S1", "", ""))
	wantStatus(t, rec, http.StatusOK)
	lines := b.logs.FilterMessage("request").All()
	if len(lines) != 1 {
		t.Fatalf("%d access log lines; want 1", len(lines))
	}
	f := lines[0].ContextMap()
	if f["subscription"] != "A-S1" || f["outcome"] != "enqueued" || f["task_id"] != "A-S1:0" || f["status"] != int64(200) || f["request_id"] == "" {
		t.Fatalf("access log fields = %v", f)
	}
	if rec.Header().Get("X-Request-Id") == "" {
		t.Fatalf("no X-Request-Id on the response")
	}
}

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	b.enq.panic = true
	wantError(t, b.do(t, callout(limioPath+"A-S1", "", "")), http.StatusInternalServerError)
	if b.logs.FilterMessage("panic").Len() != 1 {
		t.Fatalf("panic not logged")
	}
}

func TestIPAllowList(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.AllowIPs = []string{"10.0.0.0/8", "2001:db8::1"}
	b := setup(t, cfg)
	tests := []struct {
		remote string
		xff    string
		want   int
	}{
		{"10.1.2.3:5555", "", http.StatusOK},
		{"[2001:db8::1]:5555", "", http.StatusOK},
		{"192.0.2.1:5555", "", http.StatusForbidden},
		{"192.0.2.1:5555", "10.1.1.1", http.StatusForbidden}, // X-Forwarded-For is not believed
	}
	for _, tt := range tests {
		r := callout(limioPath+"A-S1", "", "")
		r.remote = tt.remote
		if tt.xff != "" {
			r.header = map[string]string{"X-Forwarded-For": tt.xff}
		}
		if rec := b.do(t, r); rec.Code != tt.want {
			t.Errorf("from %s (xff %q): status = %d; want %d", tt.remote, tt.xff, rec.Code, tt.want)
		}
	}

	cfg.TrustedProxies = []string{"192.0.2.0/24"}
	p := setup(t, cfg)
	r := callout(limioPath+"A-S1", "", "")
	r.remote, r.header = "192.0.2.1:5555", map[string]string{"X-Forwarded-For": "10.1.1.1"}
	wantStatus(t, p.do(t, r), http.StatusOK)
	r.header["X-Forwarded-For"] = "198.51.100.7"
	wantError(t, p.do(t, r), http.StatusForbidden)
}

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

func TestAuthDisabled(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AuthDisabled: true})
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: limioPath + "A-S1"}), http.StatusOK)
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/monitor"}), http.StatusOK)
	// Still no cross-site POSTs from a browser.
	r := req{method: http.MethodPost, path: "/v1/subscriptions/A-S1/sync", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}
	wantError(t, b.do(t, r), http.StatusForbidden)
}

// Disabling callout authentication leaves configured operator credentials in
// force: the operator API, /monitor and /metrics still refuse anonymous
// requests, while callouts need none.
func TestAuthDisabledKeepsOperatorCredentials(t *testing.T) {
	t.Parallel()
	cfg := Config{AuthDisabled: true, OperatorToken: opToken}
	b := setup(t, cfg)
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: limioPath + "A-S1"}), http.StatusOK)
	for _, r := range []req{
		{method: http.MethodPost, path: "/v1/subscriptions/A-S1/sync"},
		{method: http.MethodGet, path: "/monitor"},
		{method: http.MethodGet, path: "/metrics"},
	} {
		wantError(t, b.do(t, r), http.StatusUnauthorized)
		r.bearer = opToken
		if rec := b.do(t, r); rec.Code/100 != 2 {
			t.Errorf("%s %s with the token: %d", r.method, r.path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	MetricsOnly(cfg, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("work's /metrics anonymous with auth disabled but a token set: %d; want 401", rec.Code)
	}
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

// The ingress stamps every trigger it hands on with the time it took the
// request: the event-to-sync lag metric starts there.
func TestTriggersStampedWhenReceived(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	before := time.Now()
	wantStatus(t, b.do(t, callout(limioPath+"A-S1", "", "")), http.StatusOK)
	wantStatus(t, b.do(t, callout(limioPath+"A-S2", "application/json", `{"Source__c":"shop"}`)), http.StatusOK)
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: "/v1/subscriptions/A-S3/sync", bearer: opToken}), http.StatusAccepted)
	after := time.Now()
	calls := append(b.enq.Calls(), b.out.Skipped()...)
	if len(calls) != 3 {
		t.Fatalf("%d triggers handed on; want 3 (2 enqueued, 1 skipped)", len(calls))
	}
	for _, c := range calls {
		if r := c.Trig.Received; r.Before(before) || r.After(after) || r.Location() != time.UTC {
			t.Errorf("%s (%s): Received = %v; want a UTC time within the request", c.Key, c.Trig.Source, r)
		}
	}
}
