package api

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

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

// Under a burst, successful requests' lines are sampled per second of the
// ingress's clock (the first accessLogFirst, then one in
// accessLogThereafter); every 4xx is written; the next second starts over.
// It fails if the sampler is dropped, counts refusals, or ignores the clock.
func TestAccessLogSamplesSuccessesNotFailures(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	b := setup(t, baseConfig(), func(d *Deps) { d.Now = clock.Now })
	count := func(status int64) int {
		n := 0
		for _, e := range b.logs.FilterMessage("request").All() {
			if e.ContextMap()["status"] == status {
				n++
			}
		}
		return n
	}
	const burst = accessLogFirst + accessLogThereafter + 10
	for i := range burst {
		wantStatus(t, b.do(t, callout(limioPath+fmt.Sprintf("A-S%d", i), "", "")), http.StatusOK)
	}
	bad := callout(limioPath+"A-S1", "", "")
	bad.pass = "wrong-" + calloutPass
	for range burst {
		wantStatus(t, b.do(t, bad), http.StatusUnauthorized)
	}
	wantStatus(t, b.do(t, callout(limioPath+"A-S1", "application/json", `{"eventType":`)), http.StatusBadRequest)
	if got, want := count(200), accessLogFirst+1; got != want {
		t.Errorf("%d lines for %d successful requests in one second; want %d", got, burst, want)
	}
	if got := count(401); got != burst {
		t.Errorf("%d lines for %d refused requests; want every one", got, burst)
	}
	if got := count(400); got != 1 {
		t.Errorf("%d lines for the 400; want 1", got)
	}
	if n := len(b.enq.Calls()); n != burst {
		t.Fatalf("%d enqueues; want %d (sampling must drop lines only)", n, burst)
	}

	clock.Advance(accessLogTick)
	wantStatus(t, b.do(t, callout(limioPath+"A-S1", "", "")), http.StatusOK)
	if got, want := count(200), accessLogFirst+2; got != want {
		t.Errorf("%d lines after a new second; want %d", got, want)
	}
}
