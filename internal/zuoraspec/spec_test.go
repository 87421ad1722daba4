package zuoraspec

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// Used lists the operations zsync calls, with a concrete path for each.
var used = []struct{ method, template, path string }{
	{"POST", "/oauth/token", "/oauth/token"},
	{"GET", "/v1/subscriptions/{subscription-key}", "/v1/subscriptions/A-S00000001"},
	{"GET", "/v1/subscriptions/accounts/{account-key}", "/v1/subscriptions/accounts/A00000001"},
	{"GET", "/v1/accounts/{account-key}", "/v1/accounts/A00000001"},
	{"POST", "/v1/operations/billing-preview", "/v1/operations/billing-preview"},
	{"GET", "/v1/orders/{orderNumber}", "/v1/orders/O-00000001"},
	{"POST", "/v1/action/query", "/v1/action/query"},
	{"POST", "/v1/action/queryMore", "/v1/action/queryMore"},
}

func TestChangedCopyRefused(t *testing.T) {
	t.Parallel()
	m := fstest.MapFS{}
	err := fs.WalkDir(files, "specs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f := m["specs/zuora-oauth-api-openapi.yml"]
	f.Data = append([]byte(nil), f.Data...)
	f.Data[len(f.Data)-2] ^= 1
	if _, err := load(m); err == nil || !strings.Contains(err.Error(), "zuora-oauth-api-openapi.yml") {
		t.Fatalf("a changed spec loaded: %v", err)
	}
	delete(m, "specs/zuora-oauth-api-openapi.yml")
	if _, err := load(m); err == nil {
		t.Fatal("a missing spec loaded")
	}
}

// TestExamplesMatchTheSpec: every documented response example of the
// operations zsync uses is valid for its operation once the known
// disagreements (zuora.Disagreements) are applied; dropping one of them
// fails here.
func TestExamplesMatchTheSpec(t *testing.T) {
	t.Parallel()
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, op := range used {
		ex, err := s.Examples(op.method, op.template)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ex {
			r := httptest.NewRequest(op.method, op.path, nil)
			h := http.Header{"Content-Type": {"application/json"}}
			if err := s.ValidateResponse(context.Background(), r, e.Status, h, e.Body); err != nil {
				t.Errorf("%s %s example %d: %v", op.method, op.template, e.Status, err)
			}
			n++
		}
	}
	if n < 8 {
		t.Errorf("only %d examples found", n)
	}
}

func TestRequestsJudged(t *testing.T) {
	t.Parallel()
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ok := httptest.NewRequest("POST", "/v1/operations/billing-preview",
		strings.NewReader(`{"accountNumber":"A00000001","targetDate":"2027-01-01"}`))
	ok.Header.Set("Content-Type", "application/json")
	if err := s.ValidateRequest(ctx, ok); err != nil {
		t.Errorf("valid request refused: %v", err)
	}
	for name, r := range map[string]*http.Request{
		"unknown path":     httptest.NewRequest("GET", "/v1/nothing-here", nil),
		"wrong method":     httptest.NewRequest("DELETE", "/v1/operations/billing-preview", nil),
		"body off schema":  httptest.NewRequest("POST", "/v1/operations/billing-preview", strings.NewReader(`{"targetDate":7}`)),
		"token without id": httptest.NewRequest("POST", "/oauth/token", strings.NewReader("grant_type=client_credentials")),
	} {
		if r.Body != http.NoBody && r.Method == "POST" {
			if strings.HasPrefix(r.URL.Path, "/oauth") {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r.Header.Set("Content-Type", "application/json")
			}
		}
		if err := s.ValidateRequest(ctx, r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
