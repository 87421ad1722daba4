package api

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // testing the sha1 option
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

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
	return signWith(hmacSecret, newHash, enc, body)
}

// signWith is the callout signature of body under secret.
func signWith(secret string, newHash func() hash.Hash, enc, body string) string {
	m := hmac.New(newHash, []byte(secret))
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
				"other secret":     post(signWith("another secret", tt.newHash, tt.enc, body), body),
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

// The digest reads the pair unambiguously: moving bytes between the username
// and the password is a different pair.
func TestBasicMatchesExactPair(t *testing.T) {
	t.Parallel()
	want := basicDigestOf("zuora", "secret")
	for _, tt := range []struct {
		user, pass string
		ok         bool
	}{
		{"zuora", "secret", true},
		{"zuoras", "ecret", false},
		{"zuor", "asecret", false},
		{"zuora", "secre", false},
		{"zuora", "secret ", false},
		{"", "zuorasecret", false},
		{"zuorasecret", "", false},
		{"Zuora", "secret", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(tt.user, tt.pass)
		if present, ok := basicMatches(r, &want); !present || ok != tt.ok {
			t.Errorf("%q:%q: present %v, ok %v; want ok %v", tt.user, tt.pass, present, ok, tt.ok)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	if present, ok := basicMatches(r, &want); present || ok {
		t.Errorf("no credentials: present %v, ok %v", present, ok)
	}
	long := strings.Repeat("p", 500) // past basicDigestOf's stack buffer
	wantLong := basicDigestOf("zuora", long)
	r.SetBasicAuth("zuora", long)
	if _, ok := basicMatches(r, &wantLong); !ok {
		t.Error("a long password does not match itself")
	}
}
