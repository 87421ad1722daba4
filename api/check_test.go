package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/zsync/zsync/check"
)

type fakeChecker struct{ asked []string }

func (f *fakeChecker) Check(_ context.Context, sub string) check.Report {
	f.asked = append(f.asked, sub)
	return check.Report{Results: []check.Result{{ID: "limio.put_status", Status: check.Fail, Evidence: "ignored"}}, Fail: 1}
}

// GET /v1/check needs operator credentials, passes the subscription on,
// answers the report (200 even when a check failed: ok says so), refuses a
// malformed subscription, and answers 501 in a process without upstream
// settings.
func TestCheckEndpoint(t *testing.T) {
	t.Parallel()
	fc := &fakeChecker{}
	b := setup(t, baseConfig(), func(d *Deps) { d.Checker = fc })
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/v1/check"}), http.StatusUnauthorized)
	wantStatus(t, b.do(t, req{method: http.MethodGet, path: "/v1/check", user: calloutUser, pass: calloutPass}), http.StatusUnauthorized)
	if len(fc.asked) != 0 {
		t.Fatalf("checked without credentials: %v", fc.asked)
	}
	rec := b.do(t, req{method: http.MethodGet, path: "/v1/check?subscription=A-S00000201", bearer: opToken})
	wantStatus(t, rec, http.StatusOK)
	m := decode(t, rec)
	if m["ok"] != false || m["fail"] != float64(1) || len(fc.asked) != 1 || fc.asked[0] != "A-S00000201" {
		t.Fatalf("report %s, asked %v", rec.Body.String(), fc.asked)
	}
	wantError(t, b.do(t, req{method: http.MethodGet, path: "/v1/check?subscription=..%2Fx", bearer: opToken}), http.StatusBadRequest)
	if len(fc.asked) != 1 {
		t.Errorf("a malformed subscription was checked: %v", fc.asked)
	}
	n := setup(t, baseConfig())
	wantError(t, n.do(t, req{method: http.MethodGet, path: "/v1/check", bearer: opToken}), http.StatusNotImplemented)
}
