package zuoratest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/internal/zuoraspec"
	"github.com/zsync/zsync/zuora"
)

// Zuora's OAuth client ids are 36-character UUIDs, secrets at most 42
// characters (the token operation's schema).
const (
	specClientID     = "b64e42ba-7e1a-4bc6-9146-5e1b420306b5"
	specClientSecret = "dOFENLWU193EEoEsWjPZrcjLKVr5OrN1H"
)

// testServer is a sandbox issuing tokens for spec-shaped credentials.
func testServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	return NewServer(t, append([]Option{WithCredentials(specClientID, specClientSecret)}, opts...)...)
}

// contract is an HTTP client whose every exchange with the sandbox is held
// to Zuora's published spec; a violation fails t.
func contract(t *testing.T) *http.Client {
	t.Helper()
	hc, _ := zuoraspec.Client(t)
	return hc
}

// token fetches a bearer token the way a client would.
func token(t *testing.T, s *Server) string {
	t.Helper()
	resp, err := contract(t).PostForm(s.URL+"/oauth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {s.Base.ClientID}, "client_secret": {s.Base.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token: %v %+v", err, tr)
	}
	return tr.AccessToken
}

func call(t *testing.T, ctx context.Context, s *Server, tok, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := contract(t).Do(req)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func seeded(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := testServer(t, opts...)
	if err := s.Seed(os.DirFS("../testdata")); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokensRequiredAndExpire(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	ctx := context.Background()
	if resp, _ := call(t, ctx, s, "", "GET", "/v1/subscriptions/A-S00000101", ""); resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	tok := token(t, s)
	if resp, b := call(t, ctx, s, tok, "GET", "/v1/subscriptions/A-S00000101?charge-detail=all-segments", ""); resp.StatusCode != 200 ||
		!bytes.Contains(b, []byte(`"success":true`)) || resp.Header.Get("Zuora-Request-Id") == "" {
		t.Fatalf("with token: %d %s", resp.StatusCode, b)
	}
	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	if resp, _ := call(t, ctx, s, tok, "GET", "/v1/subscriptions/A-S00000101", ""); resp.StatusCode != 401 {
		t.Fatalf("expired token: %d", resp.StatusCode)
	}
	tok = token(t, s)
	s.ExpireTokens()
	if resp, _ := call(t, ctx, s, tok, "GET", "/v1/accounts/A00000101", ""); resp.StatusCode != 401 {
		t.Fatalf("forgotten token: %d", resp.StatusCode)
	}
}

func TestConcurrencyLimitAnswers429(t *testing.T) {
	t.Parallel()
	s := seeded(t, WithLimits(1, 0))
	tok := token(t, s)
	s.AddFault(sandbox.Fault{Path: "/v1/subscriptions/", LatencyMS: 5000, Count: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		call(t, ctx, s, tok, "GET", "/v1/subscriptions/A-S00000101", "") // held by the latency
	}()
	waittest.For(t, 10*time.Second, "the first request to arrive", func() bool {
		return s.Count("GET", "/v1/subscriptions/") > 0
	})
	resp, b := call(t, context.Background(), s, tok, "GET", "/v1/accounts/A00000101", "")
	cancel()
	<-done
	h := resp.Header
	if resp.StatusCode != 429 || h.Get("Retry-After") == "" || h.Get("Concurrency-Limit-Type") == "" ||
		h.Get("Concurrency-Limit-Limit") != "1" || h.Get("Concurrency-Limit-Remaining") != "0" ||
		!bytes.Contains(b, []byte("50000070")) || s.Throttled() != 1 {
		t.Fatalf("status %d headers %v body %s throttled %d", resp.StatusCode, h, b, s.Throttled())
	}
	// The slot is free again once the first request is gone.
	var last *http.Response
	waittest.For(t, 10*time.Second, "the slot to be free again", func() bool {
		last, _ = call(t, context.Background(), s, tok, "GET", "/v1/accounts/A00000101", "")
		return last.StatusCode == 200
	})
	if last.Header.Get("Concurrency-Limit-Remaining") != "0" {
		t.Errorf("remaining %q", last.Header.Get("Concurrency-Limit-Remaining"))
	}
}

func TestRateLimitAnswers429(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	tok := token(t, s)
	// Limits set over the admin API.
	if resp, _ := call(t, context.Background(), s, "", "PUT", "/sandbox/limits", `{"concurrency":0,"per_minute":2}`); resp.StatusCode != 200 {
		t.Fatalf("PUT limits: %d", resp.StatusCode)
	}
	for i := range 3 {
		resp, _ := call(t, context.Background(), s, tok, "GET", "/v1/orders/O-00000101", "")
		want := 200
		if i == 2 {
			want = 429
			if ra := resp.Header.Get("Retry-After"); ra != "58" || resp.Header.Get("RateLimit-Remaining") != "0" {
				t.Errorf("Retry-After %q headers %v", ra, resp.Header)
			}
		}
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d; want %d", i, resp.StatusCode, want)
		}
		mu.Lock()
		now = now.Add(time.Second)
		mu.Unlock()
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if resp, _ := call(t, context.Background(), s, tok, "GET", "/v1/orders/O-00000101", ""); resp.StatusCode != 200 {
		t.Fatalf("after a minute: %d", resp.StatusCode)
	}
	// The token endpoint is not limited.
	token(t, s)
}

func TestAdminSeedingOverHTTP(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	ctx := context.Background()
	body := `{"success":true,"id":"8a1","subscriptionNumber":"A-S1","status":"Active","termType":"TERMED","externallyManagedBy":"Apple","ratePlans":[]}`
	if resp, b := call(t, ctx, s, "", "PUT", "/sandbox/subscriptions/A-S1", body); resp.StatusCode != 204 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	if resp, _ := call(t, ctx, s, "", "PUT", "/sandbox/subscriptions/A-S2", body); resp.StatusCode != 400 {
		t.Fatalf("mismatched number accepted: %d", resp.StatusCode)
	}
	if resp, _ := call(t, ctx, s, "", "PUT", "/sandbox/accounts/A1", `{"basicInfo":{"id":"acc1","name":"X"}}`); resp.StatusCode != 204 {
		t.Fatalf("PUT account: %d", resp.StatusCode)
	}
	if resp, _ := call(t, ctx, s, "", "PUT", "/sandbox/orders/O-1", `{"order":{"createdBy":"u1"}}`); resp.StatusCode != 204 {
		t.Fatalf("PUT order: %d", resp.StatusCode)
	}
	tok := token(t, s)
	// Fields zsync doesn't model come back unchanged.
	if _, b := call(t, ctx, s, tok, "GET", "/v1/subscriptions/8a1", ""); !bytes.Contains(b, []byte(`"externallyManagedBy":"Apple"`)) {
		t.Errorf("GET: %s", b)
	}
	if _, b := call(t, ctx, s, tok, "GET", "/v1/accounts/acc1", ""); !bytes.Contains(b, []byte(`"accountNumber":"A1"`)) {
		t.Errorf("GET account: %s", b)
	}
	if _, b := call(t, ctx, s, tok, "GET", "/v1/orders/O-1", ""); !bytes.Contains(b, []byte(`"orderNumber":"O-1"`)) {
		t.Errorf("GET order: %s", b)
	}
	if resp, _ := call(t, ctx, s, "", "PUT", "/sandbox/not-found-style", `{"status":200}`); resp.StatusCode != 200 {
		t.Fatal("not-found style")
	}
	if resp, b := call(t, ctx, s, tok, "GET", "/v1/orders/O-2", ""); resp.StatusCode != 200 || !bytes.Contains(b, []byte("50000040")) {
		t.Errorf("not found in a 200: %d %s", resp.StatusCode, b)
	}
	if _, ok := s.Subscription("A-S1"); !ok {
		t.Error("Subscription(A-S1) missing")
	}
	if resp, _ := call(t, ctx, s, "", "POST", "/sandbox/reset", ""); resp.StatusCode != 204 {
		t.Fatal("reset")
	}
	if _, ok := s.Subscription("A-S1"); ok {
		t.Error("reset kept the subscription")
	}
}

func TestQueryErrors(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	tok := token(t, s)
	ctx := context.Background()
	for _, q := range []string{"select Name from Account", "select Secret from Subscription", "delete Subscription",
		"select Name from Subscription where Name like 'A%'"} {
		body, _ := json.Marshal(map[string]string{"queryString": q})
		// Zuora's Actions answer a query they refuse with a fault at 500.
		resp, b := call(t, ctx, s, tok, "POST", "/v1/action/query", string(body))
		if resp.StatusCode != 500 || !bytes.Contains(b, []byte(`"faultcode":"fns:`)) ||
			!bytes.Contains(b, []byte(`"faultstring"`)) || !bytes.Contains(b, []byte(`"MalformedQueryFault"`)) {
			t.Errorf("%q: %d %s", q, resp.StatusCode, b)
		}
	}
	if resp, b := call(t, ctx, s, tok, "POST", "/v1/action/queryMore", `{"queryLocator":"nope"}`); resp.StatusCode != 500 ||
		!bytes.Contains(b, []byte(`fns:INVALID_QUERY_LOCATOR`)) {
		t.Errorf("bad locator: %d %s", resp.StatusCode, b)
	}
	// Picklist values are case-sensitive, as in Zuora: 'active' is no status.
	lower := `{"queryString":"select Id, Name from Subscription where Status = 'active'"}`
	if _, b := call(t, ctx, s, tok, "POST", "/v1/action/query", lower); !bytes.Contains(b, []byte(`"size":0`)) {
		t.Errorf("'active' matched: %s", b)
	}
	body := `{"queryString":"select Id, Name, Status, Version from Subscription where Status = 'Active' and Name != 'A-S00000102'"}`
	_, b := call(t, ctx, s, tok, "POST", "/v1/action/query", body)
	var out struct {
		Records []map[string]any `json:"records"`
		Size    int              `json:"size"`
		Done    bool             `json:"done"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Size != 1 || !out.Done || out.Records[0]["Name"] != "A-S00000101" {
		t.Fatalf("query: %v %s", err, b)
	}
}

func TestConcurrentUseIsSafe(t *testing.T) {
	t.Parallel()
	s := seeded(t, WithLimits(100, 0), WithPageSize(1))
	tok := token(t, s)
	sub, _ := s.Subscription("A-S00000101")
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if i%2 == 0 {
					if err := s.PutSubscription(sub); err != nil {
						bad.Add(1)
					}
					continue
				}
				for _, c := range [][3]string{
					{"GET", "/v1/subscriptions/A-S00000101", ""},
					{"POST", "/v1/operations/billing-preview", `{"accountNumber":"A00000101","targetDate":"2027-01-01"}`},
					{"POST", "/v1/action/query", `{"queryString":"select Name from Subscription"}`},
				} {
					resp, body := call(t, context.Background(), s, tok, c[0], c[1], c[2])
					if resp == nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"success":true`) &&
						!strings.Contains(string(body), `"done"`) {
						bad.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d concurrent calls failed or answered badly", n)
	}
}

func TestPreviewDates(t *testing.T) {
	t.Parallel()
	jan31 := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	for n, want := range map[int]string{1: "2026-02-28", 2: "2026-03-31", 13: "2027-02-28", 25: "2028-02-29"} {
		if got := fmtDate(addMonths(jan31, n)); got != want {
			t.Errorf("addMonths(Jan 31, %d) = %s; want %s", n, got, want)
		}
	}
	sub := zuora.Subscription{ID: "s1", SubscriptionNumber: "A-S9", Status: "Active", TermType: "TERMED",
		TermEndDate: "2026-03-01", RatePlans: []zuora.RatePlan{{RatePlanCharges: []zuora.Charge{
			{Number: "C-1", Type: "Recurring", Model: "FlatFee", Price: zuora.NewAmount("3.333"), BillingPeriod: "Week",
				EffectiveStartDate: "2026-02-01"},
			{Number: "C-2", Type: "Recurring", Model: "Tiered", Price: zuora.NewAmount("1"), BillingPeriod: "Month",
				EffectiveStartDate: "2026-02-01"},
		}}}}
	ans, err := preview([]zuora.Subscription{sub}, zuora.BillingPreviewRequest{TargetDate: "2026-12-31"}, PreviewForm{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	items := ans.items
	// Four weeks in February, rounded to cents; the tiered charge is skipped.
	if len(items) != 4 || items[3].ServiceEndDate != "2026-02-28" || items[0].ChargeAmount.String() != "3.33" {
		t.Fatalf("items %+v", items)
	}
	sub.Status = "Draft"
	if ans, _ := preview([]zuora.Subscription{sub}, zuora.BillingPreviewRequest{TargetDate: "2026-12-31"}, PreviewForm{}, time.Now()); len(ans.items) != 0 {
		t.Fatalf("draft previewed: %+v", ans.items)
	}
	if _, err := preview(nil, zuora.BillingPreviewRequest{TargetDate: "tomorrow"}, PreviewForm{}, time.Now()); err == nil {
		t.Fatal("bad target date accepted")
	}
}

// The dev seed (zsync dev, zsync sandbox --seed) loads and answers.
func TestSeedDevData(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	if err := s.Seed(os.DirFS("../../cmd/zsync/seed/zuora")); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Subscription("A-S00000201"); !ok {
		t.Fatal("seeded subscription missing")
	}
	tok := token(t, s)
	resp, b := call(t, context.Background(), s, tok, "POST", "/v1/operations/billing-preview",
		`{"accountNumber":"A00000203","targetDate":"2027-11-01"}`)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"chargeNumber":"C-00000213"`)) {
		t.Fatalf("preview: %d %s", resp.StatusCode, b)
	}
	if err := s.Seed(os.DirFS(t.TempDir())); err != nil {
		t.Fatalf("empty dir: %v", err)
	}
}

// A fixed-amount discount is used up item by item, over the positive items
// only; a percentage applies to each item, credits too. Each discount line
// names its item and takes the item's service period.
func TestPreviewDiscountAllocation(t *testing.T) {
	t.Parallel()
	month := func(number, model, price string) zuora.Charge {
		c := zuora.Charge{ID: "ch-" + number, Number: number, Type: "Recurring", Model: model, Price: zuora.NewAmount(price),
			Quantity: zuora.NewAmount("1"), BillingPeriod: "Month", EffectiveStartDate: "2026-12-01", EffectiveEndDate: "2027-01-01"}
		return c
	}
	annual := month("C-2", "FlatFee", "5.00")
	annual.BillingPeriod = "Annual"
	fixed := month("C-F", "DiscountFixedAmount", "0")
	fixed.DiscountAmount, fixed.DiscountLevel = zuora.NewAmount("15"), "subscription"
	pct := month("C-P", "DiscountPercentage", "0")
	pct.DiscountPercentage = zuora.NewAmount("10")
	sub := zuora.Subscription{ID: "s1", SubscriptionNumber: "A-S9", Status: "Active", TermType: "TERMED", TermEndDate: "2027-01-01",
		RatePlans: []zuora.RatePlan{
			{RatePlanCharges: []zuora.Charge{month("C-1", "FlatFee", "12.99"), annual, month("C-3", "FlatFee", "-4.00"), fixed}},
			{RatePlanCharges: []zuora.Charge{month("C-4", "FlatFee", "-2.00"), pct}},
		}}
	ans, err := preview([]zuora.Subscription{sub}, zuora.BillingPreviewRequest{TargetDate: "2026-12-31"}, PreviewForm{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	number := map[string]string{}
	for _, it := range ans.items {
		number[it.ID] = it.ChargeNumber
	}
	var got []string
	for _, it := range ans.items {
		if it.ProcessingType == "Discount" {
			got = append(got, it.ChargeNumber+" "+it.ChargeAmount.StringFixed(2)+" →"+number[it.AppliedToItemID]+" "+it.ServiceEndDate)
		}
	}
	want := []string{"C-F 12.99 →C-1 2026-12-31", "C-F 2.01 →C-2 2026-12-31", "C-P 0.20 →C-4 2026-12-31"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("discounts = %v; want %v", got, want)
	}
}
