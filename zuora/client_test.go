package zuora_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/internal/zuoraspec"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// setup starts a sandbox seeded with testdata and a client for it.
func setup(t *testing.T, sopts []zuoratest.Option, copts ...zuora.Option) (*zuoratest.Server, *zuora.Client) {
	t.Helper()
	srv := contractServer(t, sopts...)
	if err := srv.Seed(os.DirFS("testdata")); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return srv, newClient(t, srv.Config(), copts...)
}

func apiError(t *testing.T, err error) *upstream.Error {
	t.Helper()
	var e *upstream.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T); want *upstream.Error", err, err)
	}
	return e
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, cfg := range []zuora.Config{
		{ClientID: "a", ClientSecret: "b"},
		{BaseURL: "ftp://x", ClientID: "a", ClientSecret: "b"},
		{BaseURL: "https://rest.zuora.com", ClientSecret: "b"},
		{BaseURL: "https://rest.zuora.com", ClientID: "a"},
	} {
		if _, err := zuora.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := zuora.New(zuora.Config{BaseURL: "https://rest.zuora.com/", ClientID: "a", ClientSecret: "b"}); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestReadsDecodeLeniently(t *testing.T) {
	t.Parallel()
	_, c := setup(t, nil)
	ctx := context.Background()
	// The …102 fixtures carry forms beyond the spec (numbers and booleans as
	// strings) that the client still reads.
	for _, p := range []string{"/v1/subscriptions/A-S00000102", "/v1/accounts/A00000102", "/v1/orders/O-00000102"} {
		offContract(t, p, "lenient fixture")
	}

	s, err := c.GetSubscription(ctx, "A-S00000101")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "Active" || s.TermEndDate != "2027-01-01" || !bool(s.AutoRenew) || len(s.RatePlans) != 2 ||
		s.RatePlans[0].RatePlanCharges[1].Price.StringFixed(2) != "60.00" || s.CustomFields.Get("Source__c") != "shop" {
		t.Errorf("subscription decoded wrong: %+v", s)
	}
	// Any version's id finds the subscription.
	byID, err := c.GetSubscription(ctx, "8a8aa0c19a4f0101000000000000a101")
	if err != nil || byID.SubscriptionNumber != "A-S00000101" {
		t.Errorf("by id: %v %v", byID, err)
	}

	// §8 mismatches: numbers as strings, booleans as strings, custom fields.
	s2, err := c.GetSubscription(ctx, "A-S00000102")
	if err != nil {
		t.Fatal(err)
	}
	ch := s2.RatePlans[0].RatePlanCharges[0]
	if s2.Version != 2 || !bool(s2.IsLatestVersion) || bool(s2.AutoRenew) || s2.TermEndDate != "" ||
		s2.CustomFields.Get("LegacyId__c") != "4711" || s2.RatePlans[0].CustomFields.Get("Region__c") != "US-East" ||
		ch.BillingDay != "1" || ch.Quantity.String() != "1" || ch.CustomFields.Get("Promo__c") != "WELCOME" {
		t.Errorf("lenient subscription decoded wrong: %+v", s2)
	}

	a, err := c.GetAccount(ctx, "A00000102")
	if err != nil {
		t.Fatal(err)
	}
	if a.BillingAndPayment.BillCycleDay != 1 || !bool(a.BillingAndPayment.AutoPay) ||
		a.Metrics.Balance.StringFixed(2) != "12.50" || a.BillToContact.Email() != "grace@example.org" ||
		a.BasicInfo.CustomFields.Get("LoyaltyPoints__c") != "120" {
		t.Errorf("lenient account decoded wrong: %+v", a)
	}
	a1, err := c.GetAccount(ctx, "8a8aa0c19a4f01010000000000acc101")
	if err != nil {
		t.Fatal(err)
	}
	if a1.BasicInfo.AccountNumber != "A00000101" || a1.SoldToContact == nil || a1.SoldToContact.LastName != "King" ||
		a1.BillToContact.Email() != "ada@lovelace.example" || a1.BillToContact.CustomFields.Get("Company__c") == "" ||
		a1.Metrics.Balance.Sign() != 0 {
		t.Errorf("account by id decoded wrong: %+v", a1)
	}

	o, err := c.GetOrder(ctx, "O-00000101")
	if err != nil {
		t.Fatal(err)
	}
	if o.CreatedBy != "sandbox-integration-user" || o.CustomFields.Get("Source__c") != "shop" ||
		len(o.Subscriptions) != 1 || o.Subscriptions[0].OrderActions[0].Type != "UpdateProduct" {
		t.Errorf("order decoded wrong: %+v", o)
	}
	o2, err := c.GetOrder(ctx, "O-00000102")
	if err != nil {
		t.Fatal(err)
	}
	if o2.CustomFields.Get("Source__c") != "" || o2.Subscriptions[0].NewVersion != 2 {
		t.Errorf("order without source decoded wrong: %+v", o2)
	}
}

// recorder remembers the headers of every request it sends.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// recording is an HTTP client that records, then holds the exchange to the
// spec.
func recording(t *testing.T, rec *recorder) zuora.Option {
	return zuora.WithHTTPClient(contractHTTP(t, rec))
}

func TestHeadersAndObserver(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	var mu sync.Mutex
	var ops []string
	_, c := setup(t, nil, recording(t, rec),
		zuora.WithObserver(func(op string, status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			ops = append(ops, op+" "+http.StatusText(status))
		}))
	ctx := context.Background()
	for range 2 {
		if _, err := c.GetSubscription(ctx, "A-S00000101"); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seen := map[string]bool{}
	for _, h := range rec.headers[1:] { // [0] is the token request
		id := h.Get("Zuora-Track-Id")
		if h.Get("Zuora-Version") != zuora.DefaultVersion || id == "" || len(id) > 64 ||
			strings.ContainsAny(id, `:;"'`) || seen[id] {
			t.Errorf("bad headers: version %q track id %q", h.Get("Zuora-Version"), id)
		}
		seen[id] = true
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ops) != 2 || ops[0] != "GET /v1/subscriptions/{key} OK" {
		t.Errorf("observed %v", ops)
	}
}

// A failed call names the track id it was sent with, for both sides' logs.
func TestErrorCarriesTrackID(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	_, c := setup(t, nil, recording(t, rec))
	_, err := c.GetSubscription(context.Background(), "A-S09999999")
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v; want *upstream.Error", err)
	}
	rec.mu.Lock()
	sent := rec.headers[len(rec.headers)-1].Get("Zuora-Track-Id")
	rec.mu.Unlock()
	if ue.TrackID == "" || ue.TrackID != sent || !strings.Contains(err.Error(), sent) {
		t.Errorf("error %v: track id %q; sent %q", err, ue.TrackID, sent)
	}
}

func TestTokenCachedAndRefreshed(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv, c := setup(t, nil, zuora.WithClock(clock))
	srv.SetClock(clock)
	ctx := context.Background()
	get := func() {
		t.Helper()
		if _, err := c.GetSubscription(ctx, "A-S00000101"); err != nil {
			t.Fatal(err)
		}
	}
	tokens := func() int { return srv.Count(http.MethodPost, "/oauth/token") }
	gets := func() int { return srv.Count(http.MethodGet, "/v1/subscriptions/") }

	get()
	get()
	get()
	if tokens() != 1 || gets() != 3 {
		t.Fatalf("tokens %d gets %d; want 1, 3", tokens(), gets())
	}
	// Both clocks move past expiry: the client refreshes before asking.
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	get()
	if tokens() != 2 || gets() != 4 {
		t.Fatalf("after expiry: tokens %d gets %d; want 2, 4", tokens(), gets())
	}
	// The server forgets its tokens: one 401, a fresh token, one retry.
	srv.ExpireTokens()
	get()
	if tokens() != 3 || gets() != 6 {
		t.Fatalf("after 401: tokens %d gets %d; want 3, 6", tokens(), gets())
	}
}

func TestOnlyOneRetryAfter401(t *testing.T) {
	t.Parallel()
	srv, c := setup(t, nil)
	srv.AddFault(sandbox.Fault{Path: "/v1/accounts/", Status: http.StatusUnauthorized})
	_, err := c.GetAccount(context.Background(), "A00000101")
	if e := apiError(t, err); e.Kind != upstream.Unauthorized || e.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v; want an unauthorized 401", err)
	}
	if n, tok := srv.Count(http.MethodGet, "/v1/accounts/"), srv.Count(http.MethodPost, "/oauth/token"); n != 2 || tok != 2 {
		t.Fatalf("requests %d tokens %d; want 2, 2", n, tok)
	}
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fault     sandbox.Fault
		wantKind  upstream.Kind
		wantCode  string
		wantRetry time.Duration
	}{
		{"429 with Retry-After", sandbox.Fault{Status: 429, RetryAfterS: 7}, upstream.Throttled, "50000070", 7 * time.Second},
		{"500", sandbox.Fault{Status: 500}, upstream.Retryable, "50000060", 0},
		{"503", sandbox.Fault{Status: 503}, upstream.Retryable, "50000060", 0},
		{"400", sandbox.Fault{Status: 400}, upstream.Permanent, "50000020", 0},
		{"lock inside a 200", sandbox.Fault{Status: 200,
			Body: `{"success":false,"processId":"AB12","reasons":[{"code":"53100050","message":"locked"}]}`},
			upstream.Retryable, "53100050", 0},
		{"validation inside a 200", sandbox.Fault{Status: 200,
			Body: `{"success":false,"reasons":[{"code":53100320,"message":"bad field"}]}`},
			upstream.Permanent, "53100320", 0},
		{"limit inside a 200", sandbox.Fault{Status: 200,
			Body: `{"success":false,"reasons":[{"code":50000070,"message":"slow down"}]}`},
			upstream.Throttled, "50000070", 0},
		{"object-CRUD shape", sandbox.Fault{Status: 200,
			Body: `{"Success":false,"Errors":[{"Code":"INVALID_VALUE","Message":"nope"}]}`},
			upstream.Permanent, "INVALID_VALUE", 0},
		{"object-CRUD lock competition", sandbox.Fault{Status: 200,
			Body: `{"Success":false,"Errors":[{"Code":"LOCK_COMPETITION","Message":"retry"}]}`},
			upstream.Retryable, "LOCK_COMPETITION", 0},
		{"action query over the limit", sandbox.Fault{Status: 200,
			Body: `{"Success":false,"Errors":[{"Code":"REQUEST_EXCEEDED_LIMIT","Message":"later"}]}`},
			upstream.Throttled, "REQUEST_EXCEEDED_LIMIT", 0},
		{"string success false", sandbox.Fault{Status: 200,
			Body: `{"success":"false","reasons":[{"code":"INVALID","message":"x"}]}`},
			upstream.Permanent, "INVALID", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c := setup(t, nil)
			f := tt.fault
			f.Path = "/v1/subscriptions/"
			srv.AddFault(f)
			// Injected bodies: error shapes of other endpoints, on purpose.
			offContract(t, "/v1/subscriptions/A-S00000101", "injected error body")
			_, err := c.GetSubscription(context.Background(), "A-S00000101")
			e := apiError(t, err)
			if e.Kind != tt.wantKind || e.Code != tt.wantCode || e.RetryAfter != tt.wantRetry {
				t.Fatalf("err = %v (kind %v code %q retry %v); want %v %q %v",
					err, e.Kind, e.Code, e.RetryAfter, tt.wantKind, tt.wantCode, tt.wantRetry)
			}
			if upstream.IsRetryable(err) != (tt.wantKind == upstream.Retryable || tt.wantKind == upstream.Throttled) {
				t.Errorf("IsRetryable = %v", upstream.IsRetryable(err))
			}
		})
	}
}

func TestCategory(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]int{"50000040": 40, "53100320": 20, "58730070": 70, "INVALID": -1, "": -1, "7": -1} {
		if got := zuora.Category(code); got != want {
			t.Errorf("Category(%q) = %d; want %d", code, got, want)
		}
	}
}

func TestNotFoundBothShapes(t *testing.T) {
	t.Parallel()
	for _, style := range []zuoratest.NotFoundStyle{zuoratest.NotFound404, zuoratest.NotFound200} {
		srv, c := setup(t, []zuoratest.Option{zuoratest.WithNotFoundStyle(style)})
		ctx := context.Background()
		_, err1 := c.GetSubscription(ctx, "A-S99999999")
		_, err2 := c.GetAccount(ctx, "A99999999")
		_, err3 := c.GetOrder(ctx, "O-99999999")
		_, err4 := c.BillingPreview(ctx, zuora.BillingPreviewRequest{AccountNumber: "A99999999", TargetDate: "2027-01-01"})
		for _, err := range []error{err1, err2, err3, err4} {
			if !errors.Is(err, upstream.ErrNotFound) || upstream.IsRetryable(err) {
				t.Errorf("style %v: err = %v; want not found", style, err)
			}
		}
		if e := apiError(t, err1); e.Code != "50000040" {
			t.Errorf("code %q", e.Code)
		}
		// The switch works on a running server too.
		srv.SetNotFoundStyle(1 - style)
		if _, err := c.GetSubscription(ctx, "A-S99999999"); !errors.Is(err, upstream.ErrNotFound) {
			t.Errorf("after switch: %v", err)
		}
	}
}

func TestBadKeysMakeNoRequest(t *testing.T) {
	t.Parallel()
	srv, c := setup(t, nil)
	ctx := context.Background()
	for _, key := range []string{"", "A-S1/../x", "..", "a/b", strings.Repeat("9", 101), "A S1", "A-S1\n"} {
		_, err1 := c.GetSubscription(ctx, key)
		_, err2 := c.GetAccount(ctx, key)
		_, err3 := c.GetOrder(ctx, key)
		_, err4 := c.BillingPreview(ctx, zuora.BillingPreviewRequest{AccountNumber: key, TargetDate: "2027-01-01"})
		for _, err := range []error{err1, err2, err3, err4} {
			if e := apiError(t, err); e.Kind != upstream.Permanent {
				t.Errorf("key %q: %v", key, err)
			}
		}
	}
	_, err := c.BillingPreview(ctx, zuora.BillingPreviewRequest{AccountNumber: "A00000101", TargetDate: "01/01/2027"})
	if e := apiError(t, err); e.Kind != upstream.Permanent {
		t.Errorf("bad target date: %v", err)
	}
	if err := c.QuerySubscriptions(ctx, zuora.SubscriptionQuery{Status: "Active' or '1'='1"}, func(string) error { return nil }); err == nil {
		t.Error("injected status accepted")
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("requests made: %v", srv.Requests())
	}
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-value-xyz"
	srv := contractServer(t, zuoratest.WithCredentials(specClientID, secret))
	rec := &recorder{}
	cfg := srv.Config()

	bad := cfg
	bad.ClientSecret = "wrong-" + secret
	c := newClient(t, bad)
	_, err := c.GetSubscription(context.Background(), "A-S00000101")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v", err)
	}

	c = newClient(t, cfg, recording(t, rec))
	var errs []error
	for _, st := range []int{400, 401, 404, 429, 500} {
		srv.AddFault(sandbox.Fault{Path: "/v1/subscriptions/", Status: st})
		_, err := c.GetSubscription(context.Background(), "A-S00000101")
		srv.ClearFaults()
		errs = append(errs, err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var bearers []string
	for _, h := range rec.headers {
		if a := h.Get("Authorization"); a != "" {
			bearers = append(bearers, strings.TrimPrefix(a, "Bearer "))
		}
	}
	if len(bearers) == 0 {
		t.Fatal("no bearer token seen")
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("fault did not fail")
		}
		for _, s := range append(bearers, secret) {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains a secret", err)
			}
		}
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	srv := contractServer(t)
	cfg := srv.Config()
	cfg.Timeout = 100 * time.Millisecond
	c := newClient(t, cfg)
	srv.AddFault(sandbox.Fault{Path: "/v1/subscriptions/", LatencyMS: 2000})
	_, err := c.GetSubscription(context.Background(), "A-S00000101")
	if e := apiError(t, err); e.Kind != upstream.Retryable || e.StatusCode != 0 {
		t.Fatalf("err = %v; want retryable without response", err)
	}
}

func TestCancelledContextIsNotRetryable(t *testing.T) {
	t.Parallel()
	_, c := setup(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.GetSubscription(ctx, "A-S00000101")
	if !errors.Is(err, context.Canceled) || upstream.IsRetryable(err) {
		t.Fatalf("err = %v", err)
	}
}

// GetSubscription asks for every charge segment (charge-detail=all-segments),
// which Zuora only then returns; without it the sandbox, like Zuora, leaves
// chargeSegments out.
func TestGetSubscriptionReadsAllSegments(t *testing.T) {
	t.Parallel()
	srv, c := setup(t, nil)
	ctx := context.Background()
	s, err := c.GetSubscription(ctx, "A-S00000101")
	if err != nil {
		t.Fatal(err)
	}
	s.RatePlans[0].RatePlanCharges[0].ChargeSegments = []zuora.ChargeSegment{
		{Segment: 1, EffectiveStartDate: "2026-01-01", EffectiveEndDate: "2027-01-01", ChargedThroughDate: "2026-12-01"},
		{Segment: 2, EffectiveStartDate: "2027-01-01"},
	}
	if err := srv.PutSubscription(*s); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetSubscription(ctx, "A-S00000101")
	if err != nil {
		t.Fatal(err)
	}
	if sg := got.RatePlans[0].RatePlanCharges[0].ChargeSegments; len(sg) != 2 || sg[0].ChargedThroughDate != "2026-12-01" || int(sg[1].Segment) != 2 {
		t.Fatalf("segments read back: %+v", sg)
	}

	// The same subscription asked for without the parameter.
	cfg := srv.Config()
	resp, err := http.PostForm(cfg.BaseURL+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {cfg.ClientID}, "client_secret": {cfg.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, cfg.BaseURL+"/v1/subscriptions/A-S00000101", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "chargeSegments") || !strings.Contains(string(body), "C-") {
		t.Fatalf("default answer (%d) should be the subscription without chargeSegments: %.300s", resp.StatusCode, body)
	}
}

// ZOQL faults come at HTTP 500; a query Zuora refuses is permanent and its
// faultstring is the message, a transient fault retries.
func TestQueryFaultsClassified(t *testing.T) {
	t.Parallel()
	fault := func(code, detail string) string {
		return `{"faultcode":"fns:` + code + `","faultstring":"` + strings.ToLower(code) + ` here","detail":{"` + detail +
			`":{"FaultCode":"` + code + `","FaultMessage":"x"}}}`
	}
	for _, tt := range []struct {
		body string
		want upstream.Kind
	}{
		{fault("INVALID_FIELD", "MalformedQueryFault"), upstream.Permanent},
		{fault("INVALID_TYPE", "MalformedQueryFault"), upstream.Permanent},
		{fault("MALFORMED_QUERY", "MalformedQueryFault"), upstream.Permanent},
		{fault("INVALID_QUERY_LOCATOR", "InvalidQueryLocatorFault"), upstream.Permanent},
		{fault("LOCK_COMPETITION", "UnexpectedErrorFault"), upstream.Retryable},
		{fault("TEMPORARY_ERROR", "UnexpectedErrorFault"), upstream.Retryable},
		{fault("REQUEST_EXCEEDED_LIMIT", "UnexpectedErrorFault"), upstream.Throttled},
	} {
		srv, c := setup(t, nil)
		srv.AddFault(sandbox.Fault{Path: "/v1/action/query", Status: 500, Body: tt.body})
		err := c.QuerySubscriptions(context.Background(), zuora.SubscriptionQuery{Status: "Active"}, func(string) error { return nil })
		e := apiError(t, err)
		if e.Kind != tt.want || !strings.Contains(e.Message, " here") || !strings.HasPrefix(e.Code, "fns:") {
			t.Errorf("%s: err = %v (kind %v); want %v with the faultstring", tt.body, err, e.Kind, tt.want)
		}
	}
	// The sandbox's own answer to a query it refuses is such a fault.
	_, c := setup(t, nil)
	err := c.QuerySubscriptions(context.Background(), zuora.SubscriptionQuery{Status: "Active'"}, func(string) error { return nil })
	if err == nil {
		t.Fatal("a quote in the status filter was accepted")
	}
}

// Each error category comes at the status the pinned Zuora-Version gives it,
// and the client classifies it.
func TestCategoriesAtTheirStatus(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cat    int
		status int
		want   upstream.Kind
	}{
		{10, 403, upstream.Permanent}, {11, 401, upstream.Unauthorized}, {20, 400, upstream.Permanent},
		{21, 400, upstream.Permanent}, {22, 400, upstream.Permanent}, {23, 400, upstream.Permanent},
		{30, 400, upstream.Permanent}, {90, 400, upstream.Permanent}, {40, 404, upstream.NotFound},
		{50, 409, upstream.Retryable}, {60, 500, upstream.Retryable}, {61, 500, upstream.Retryable},
		{99, 500, upstream.Retryable}, {70, 429, upstream.Throttled},
	} {
		if got := zuoratest.StatusForCategory(tt.cat); got != tt.status {
			t.Errorf("category %d answered %d; want %d", tt.cat, got, tt.status)
		}
		srv, c := setup(t, nil)
		srv.FailCategory("/v1/accounts/", tt.cat, 0)
		_, err := c.GetAccount(context.Background(), "A00000101")
		// A 401 is retried once with a new token, then reported as such.
		if e := apiError(t, err); e.Kind != tt.want || e.StatusCode != tt.status || (tt.cat != 11 && Category(e.Code) != tt.cat) {
			t.Errorf("category %d: err = %v (kind %v); want %v", tt.cat, err, e.Kind, tt.want)
		}
	}
}

// Category is zuora.Category, shorter.
func Category(code string) int { return zuora.Category(code) }

// zuora.entity_ids goes out as Zuora-Entity-Ids on every API call.
func TestEntityIDsOnEveryCall(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	srv := contractServer(t)
	if err := srv.Seed(os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config()
	cfg.EntityIDs = []string{"1a2b7a37-3e7d-4cb3-b0e2-883de9e766cc"}
	c := newClient(t, cfg, recording(t, rec))
	ctx := context.Background()
	if _, err := c.GetSubscription(ctx, "A-S00000101"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAccount(ctx, "A00000101"); err != nil {
		t.Fatal(err)
	}
	if err := c.QuerySubscriptions(ctx, zuora.SubscriptionQuery{Status: "Active"}, func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, h := range rec.headers[1:] { // [0] is the token request
		if got := h.Get("Zuora-Entity-Ids"); got != cfg.EntityIDs[0] {
			t.Errorf("Zuora-Entity-Ids = %q", got)
		}
	}
	for _, ids := range [][]string{{"bad id"}, {"e1", "e2"}} {
		cfg.EntityIDs = ids
		if _, err := zuora.New(cfg); err == nil {
			t.Errorf("entity ids %q accepted", ids)
		}
	}
}

// zuora.environment names a base URL from the spec's table of tenants; the
// base URL wins when set.
func TestEnvironments(t *testing.T) {
	t.Parallel()
	spec, err := zuoraspec.Load()
	if err != nil {
		t.Fatal(err)
	}
	desc := spec.Description("zuora-subscriptions-api-openapi.yml")
	published := map[string]bool{}
	for _, m := range regexp.MustCompile(`\|\s*(https://rest\.[a-z0-9.]+\.com)\s*\|`).FindAllStringSubmatch(desc, -1) {
		published[m[1]] = true
	}
	if len(published) < 9 {
		t.Fatalf("the spec's tenant table has %d URLs", len(published))
	}
	named := map[string]bool{}
	for name, u := range zuora.Environments {
		if !published[u] {
			t.Errorf("%s → %s is not in Zuora's table", name, u)
		}
		named[u] = true
	}
	for u := range published {
		if !named[u] {
			t.Errorf("Zuora's %s has no environment name", u)
		}
	}
	// Nothing leaves the machine: the transport notes the host and fails.
	var mu sync.Mutex
	var hosts []string
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		hosts = append(hosts, r.URL.Host)
		mu.Unlock()
		return nil, errors.New("offline")
	})}
	for env, want := range map[string]string{"eu-sandbox": "rest.sandbox.eu.zuora.com", "": "127.0.0.1:1"} {
		cfg := zuora.Config{Environment: env, ClientID: "a", ClientSecret: "b"}
		if env == "" {
			cfg.Environment, cfg.BaseURL = "us-production", "http://127.0.0.1:1" // the base URL wins
		}
		c, err := zuora.New(cfg, zuora.WithHTTPClient(hc))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.GetAccount(context.Background(), "A1")
		mu.Lock()
		if len(hosts) == 0 || hosts[len(hosts)-1] != want {
			t.Errorf("environment %q: sent to %v; want %s", cfg.Environment, hosts, want)
		}
		mu.Unlock()
	}
	if _, err := zuora.New(zuora.Config{Environment: "mars-production", ClientID: "a", ClientSecret: "b"}); err == nil ||
		!strings.Contains(err.Error(), "eu-sandbox") {
		t.Errorf("an unknown environment: %v", err)
	}
	if u, _ := zuora.EnvironmentURL("eu-sandbox"); u != "https://rest.sandbox.eu.zuora.com" {
		t.Errorf("eu-sandbox → %s", u)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
