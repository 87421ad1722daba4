package zuoraspec

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The transport reports a request or an answer off the spec, leaves the
// sandbox's admin endpoints alone, and skips answers declared off contract.
func TestTransportReportsViolations(t *testing.T) {
	t.Parallel()
	spec, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"success":true,"basicInfo":{"accountNumber":7}}`)) // declared a string
	}))
	t.Cleanup(hs.Close)
	var mu sync.Mutex
	var fails []string
	tr := &Transport{Spec: spec, Fail: func(err error) { mu.Lock(); fails = append(fails, err.Error()); mu.Unlock() }}
	hc := &http.Client{Transport: tr}
	get := func(path string) []string {
		t.Helper()
		mu.Lock()
		fails = nil
		mu.Unlock()
		resp, err := hc.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), fails...)
	}
	if f := get("/v1/accounts/A1"); len(f) != 1 || !strings.Contains(f[0], "accountNumber") {
		t.Errorf("off-spec answer: %v", f)
	}
	if f := get("/v1/no-such-operation"); len(f) == 0 || !strings.Contains(f[0], "no operation") {
		t.Errorf("unknown operation: %v", f)
	}
	if f := get("/sandbox/requests"); len(f) != 0 {
		t.Errorf("admin endpoint checked: %v", f)
	}
	tr.OffContract("/v1/accounts/A1", "test")
	if f := get("/v1/accounts/A1"); len(f) != 0 {
		t.Errorf("off-contract answer checked: %v", f)
	}
	if tr.Checked() != 2 {
		t.Errorf("checked %d exchanges; want 2", tr.Checked())
	}
}
