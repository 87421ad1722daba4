package zuora_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"

	"github.com/zsync/zsync/internal/zuoraspec"
	"github.com/zsync/zsync/zuora"
)

// examples returns the documented 200 examples of an operation.
func examples(t *testing.T, method, template string) [][]byte {
	t.Helper()
	spec, err := zuoraspec.Load()
	if err != nil {
		t.Fatal(err)
	}
	ex, err := spec.Examples(method, template)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range ex {
		if e.Status == http.StatusOK {
			out = append(out, e.Body)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s %s: no documented 200 example", method, template)
	}
	return out
}

// Every documented response example of the operations zsync calls is seeded
// into the sandbox as is, served (and held to the spec on the way), and read
// by the client without error.
func TestDocumentedExamplesAreRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := contractServer(t)
	c := newClient(t, srv.Config())

	for i, b := range examples(t, "GET", "/v1/subscriptions/{subscription-key}") {
		if err := srv.Seed(fstest.MapFS{"subscriptions/x.json": {Data: b}}); err != nil {
			t.Fatalf("seed subscription example %d: %v", i, err)
		}
		var want struct{ SubscriptionNumber, Status, TermEndDate string }
		_ = json.Unmarshal(b, &want)
		s, err := c.GetSubscription(ctx, want.SubscriptionNumber)
		if err != nil {
			t.Fatalf("subscription example %d: %v", i, err)
		}
		if s.Status != want.Status || s.TermEndDate != want.TermEndDate || len(s.RatePlans) == 0 {
			t.Errorf("subscription example %d read as %+v", i, s)
		}
	}
	for i, b := range examples(t, "GET", "/v1/accounts/{account-key}") {
		if err := srv.Seed(fstest.MapFS{"accounts/x.json": {Data: b}}); err != nil {
			t.Fatalf("seed account example %d: %v", i, err)
		}
		var want struct {
			BasicInfo struct{ AccountNumber string }
		}
		_ = json.Unmarshal(b, &want)
		a, err := c.GetAccount(ctx, want.BasicInfo.AccountNumber)
		if err != nil {
			t.Fatalf("account example %d: %v", i, err)
		}
		if a.BasicInfo.AccountNumber != want.BasicInfo.AccountNumber || a.BillingAndPayment.BillCycleDay != 1 ||
			a.BillToContact == nil || a.BillToContact.Email() == "" {
			t.Errorf("account example %d read as %+v", i, a)
		}
	}
	for i, b := range examples(t, "GET", "/v1/orders/{orderNumber}") {
		if err := srv.Seed(fstest.MapFS{"orders/x.json": {Data: b}}); err != nil {
			t.Fatalf("seed order example %d: %v", i, err)
		}
		var want struct {
			Order struct{ OrderNumber, CreatedBy string }
		}
		_ = json.Unmarshal(b, &want)
		o, err := c.GetOrder(ctx, want.Order.OrderNumber)
		if err != nil {
			t.Fatalf("order example %d: %v", i, err)
		}
		if o.OrderNumber != want.Order.OrderNumber || o.CreatedBy != want.Order.CreatedBy || len(o.Subscriptions) == 0 {
			t.Errorf("order example %d read as %+v", i, o)
		}
	}
	for i, b := range examples(t, "POST", "/v1/operations/billing-preview") {
		if err := srv.PutPreview("A00000001", b); err != nil {
			t.Fatal(err)
		}
		p, err := c.BillingPreview(ctx, zuora.BillingPreviewRequest{AccountNumber: "A00000001", TargetDate: "2027-01-01"})
		if err != nil {
			t.Fatalf("billing preview example %d: %v", i, err)
		}
		if len(p.InvoiceItems) == 0 || p.InvoiceItems[0].ChargeAmount.IsZero() {
			t.Errorf("billing preview example %d read as %+v", i, p)
		}
	}
	for i, b := range examples(t, "POST", "/v1/action/query") {
		if err := srv.PutQueryAnswer(b); err != nil {
			t.Fatal(err)
		}
		// The example queries another object (no Name): nothing to stream,
		// and no error.
		err := c.QuerySubscriptions(ctx, zuora.SubscriptionQuery{Status: "Active"}, func(string) error { return nil })
		if err != nil {
			t.Fatalf("query example %d: %v", i, err)
		}
	}
}

// The token example is what the client's token fetch reads.
func TestTokenExampleIsRead(t *testing.T) {
	t.Parallel()
	tokenEx := examples(t, "POST", "/oauth/token")[0]
	subEx := examples(t, "GET", "/v1/subscriptions/{subscription-key}")[0]
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(tokenEx, &tok)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(tokenEx)
	})
	mux.HandleFunc("GET /v1/subscriptions/{key}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+tok.AccessToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(subEx)
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	c := newClient(t, zuora.Config{BaseURL: hs.URL, ClientID: specClientID, ClientSecret: specClientSecret})
	if _, err := c.GetSubscription(context.Background(), "A-S00000001"); err != nil {
		t.Fatalf("with the token example: %v", err)
	}
}
