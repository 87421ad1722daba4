package zuoraspec

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Transport is an http.RoundTripper that holds every exchange passing
// through it to the spec: the request before it is sent, the response once
// it arrives. A violation is reported to Fail (the exchange goes on, so the
// test sees both the violation and what followed). The sandbox's own
// /sandbox/ admin endpoints are not Zuora's and pass unchecked.
type Transport struct {
	Spec *Spec
	Next http.RoundTripper // http.DefaultTransport when nil
	Fail func(error)

	mu          sync.Mutex
	offContract map[string]string // path → why its answers are off the contract on purpose
	checked     atomic.Int64
}

// OffContract stops checking the answers for path (exactly): a test that
// serves a body beyond the spec on purpose (the client's tolerance beyond
// the contract) says so, with its reason, and the requests are still checked.
func (t *Transport) OffContract(path, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.offContract == nil {
		t.offContract = map[string]string{}
	}
	t.offContract[path] = reason
}

func (t *Transport) isOffContract(path string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.offContract[path]
	return ok
}

// Checked is how many exchanges were held to the spec.
func (t *Transport) Checked() int64 { return t.checked.Load() }

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	if strings.HasPrefix(r.URL.Path, "/sandbox/") {
		return next.RoundTrip(r)
	}
	if err := t.Spec.ValidateRequest(r.Context(), r); err != nil {
		t.Fail(err)
	}
	resp, err := next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // the client sees the same truncated body
	}
	if t.isOffContract(r.URL.Path) {
		return resp, nil
	}
	if err := t.Spec.ValidateResponse(r.Context(), r, resp.StatusCode, resp.Header, body); err != nil {
		t.Fail(err)
	}
	t.checked.Add(1)
	return resp, nil
}

// Client is an *http.Client whose every exchange is held to the spec, a
// violation failing t.
func Client(t testing.TB) (*http.Client, *Transport) {
	t.Helper()
	spec, err := Load()
	if err != nil {
		t.Fatalf("zuoraspec: %v", err)
	}
	tr := &Transport{Spec: spec, Fail: func(err error) { t.Errorf("contract: %v", err) }}
	return &http.Client{Transport: tr}, tr
}
