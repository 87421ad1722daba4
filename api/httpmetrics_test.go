package api

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"testing"
	"time"
)

type fakeHTTPMetrics struct {
	mu       sync.Mutex
	requests map[string]int // "route method status"
	refused  map[string]int
	declared []string
	skipped  int
}

func (f *fakeHTTPMetrics) CalloutSkipped() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skipped++
}

func (f *fakeHTTPMetrics) HTTPRequest(route, method string, status int, _ time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[route+" "+method+" "+http.StatusText(status)]++
}

func (f *fakeHTTPMetrics) CalloutRefused(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused[reason]++
}

func (f *fakeHTTPMetrics) DeclareRefusals(r []string) { f.declared = r }

// Every request is counted by its route pattern (never the raw path, which
// carries ids) and status; refused callouts by why.
func TestHTTPMetrics(t *testing.T) {
	t.Parallel()
	m := &fakeHTTPMetrics{requests: map[string]int{}, refused: map[string]int{}}
	cfg := baseConfig()
	cfg.HMACSecret = hmacSecret
	b := setup(t, cfg, func(d *Deps) { d.HTTPMetrics = m })
	if len(m.declared) != len(RefusalReasons) {
		t.Errorf("declared %v; want every reason", m.declared)
	}
	body := `{"subscriptionNumber":"A-S1"}`
	signed := callout("/v1/callouts/zuora", "application/json", body)
	signed.header = map[string]string{"X-Zuora-Signature": sign(sha256.New, "hex", body)}
	wantStatus(t, b.do(t, signed), http.StatusOK)
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: limioPath + "A-S1"}), http.StatusUnauthorized)                               // the challenge
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: limioPath + "A-S1", user: calloutUser, pass: "x"}), http.StatusUnauthorized) // wrong password
	wantStatus(t, b.do(t, callout("/v1/callouts/zuora", "application/json", body)), http.StatusUnauthorized)                              // no signature
	badID := callout(limioPath+"A-S1;x", "", "")
	badID.header = map[string]string{"X-Zuora-Signature": sign(sha256.New, "hex", "")}
	wantStatus(t, b.do(t, badID), http.StatusBadRequest)
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/v1/subscriptions/A-S2/sync", bearer: opToken}), http.StatusNotFound)
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/no/such/A-S3"}), http.StatusNotFound)
	loop := `{"subscriptionNumber":"A-S4","Source__c":"shop"}`
	skipped := callout("/v1/callouts/zuora", "application/json", loop)
	skipped.header = map[string]string{"X-Zuora-Signature": sign(sha256.New, "hex", loop)}
	wantStatus(t, b.do(t, skipped), http.StatusOK) // the loop guard's skip

	m.mu.Lock()
	defer m.mu.Unlock()
	for k, want := range map[string]int{
		"/v1/callouts/zuora POST OK":                               2,
		"/v1/callouts/zuora POST Unauthorized":                     1,
		"/api/plugins/zuora/sync/subscription/* POST Unauthorized": 2,
		"/api/plugins/zuora/sync/subscription/* POST Bad Request":  1,
		"/v1/subscriptions/:id/sync GET Not Found":                 1,
		"unmatched GET Not Found":                                  1,
	} {
		if m.requests[k] != want {
			t.Errorf("requests[%q] = %d; want %d (all: %v)", k, m.requests[k], want, m.requests)
		}
	}
	for reason, want := range map[string]int{
		RefusalChallenge: 1, RefusalBadCredentials: 1, RefusalBadSignature: 1, RefusalInvalidID: 1,
	} {
		if m.refused[reason] != want {
			t.Errorf("refused[%s] = %d; want %d (all: %v)", reason, m.refused[reason], want, m.refused)
		}
	}
	if m.skipped != 1 {
		t.Errorf("skipped = %d; want 1 (the loop-guarded callout)", m.skipped)
	}
	if len(m.refused) != 4 {
		t.Errorf("refused = %v; an operator 404 is not a refused callout", m.refused)
	}
}
