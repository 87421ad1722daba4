package limio_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
)

// Seeded objects (testdata/seed).
const (
	seedSub      = "sub-5c3d6e2f1a9b4c7d8e0f1a2b3c4d5e6f"
	seedCustomer = "cus-2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c"
	seedRef      = "3V053CN9SFIG"
	seedZuora    = "A-S00000101"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type bundle struct {
	srv    *limiotest.Server
	client *limio.Client
	clock  *clock
	url    string
	bodies *bodies
}

// bodies records the request bodies the sandbox received, by "METHOD path".
type bodies struct {
	mu sync.Mutex
	m  map[string][]string
}

func (b *bodies) get(key string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.m[key]...)
}

// setup starts a seeded sandbox behind a recorder of request bodies, and a
// client for it sharing one fake clock.
func setup(t *testing.T, opts ...limio.Option) *bundle {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	srv := limiotest.New(limiotest.WithClock(clk.Now))
	if err := srv.Seed(os.DirFS("testdata/seed")); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	rec := &bodies{m: map[string][]string{}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.m[r.Method+" "+r.URL.Path] = append(rec.m[r.Method+" "+r.URL.Path], string(b))
		rec.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	c, err := limio.New(limio.Config{BaseURL: hs.URL + "/", ClientID: "sandbox", ClientSecret: "sandbox"},
		append([]limio.Option{limio.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &bundle{srv: srv, client: c, clock: clk, url: hs.URL, bodies: rec}
}

func kindOf(t *testing.T, err error) upstream.Kind {
	t.Helper()
	var e *upstream.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *upstream.Error", err, err)
	}
	return e.Kind
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		cfg  limio.Config
	}{
		{"no base url", limio.Config{ClientID: "a", ClientSecret: "b"}},
		{"not http", limio.Config{BaseURL: "ftp://x", ClientID: "a", ClientSecret: "b"}},
		{"no host", limio.Config{BaseURL: "https://", ClientID: "a", ClientSecret: "b"}},
		{"no client id", limio.Config{BaseURL: "https://acme.prod.limio.com", ClientSecret: "b"}},
		{"no secret", limio.Config{BaseURL: "https://acme.prod.limio.com", ClientID: "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if _, err := limio.New(tc.cfg); err == nil {
				t.Errorf("New(%+v) = nil error; want one", tc.cfg)
			}
		})
	}
}

func TestGetSubscription(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, err := b.client.GetSubscription(t.Context(), seedSub)
	if err != nil {
		t.Fatalf("GetSubscription: %v", err)
	}
	if s.ID != seedSub || s.Reference != seedRef || s.Customer != seedCustomer || s.Status != limio.StatusActive {
		t.Errorf("envelope = %+v", s.Envelope)
	}
	if s.Data.Zuora == nil || s.Data.Zuora.SubscriptionNumber != seedZuora || s.Data.Zuora.Version != 3 {
		t.Errorf("data.zuora = %+v; want %s version 3", s.Data.Zuora, seedZuora)
	}
	if s.Data.TermEndDate == nil || *s.Data.TermEndDate != "2027-03-22" || s.Data.Attributes.AutoRenew == nil || !*s.Data.Attributes.AutoRenew {
		t.Errorf("term/auto-renew = %v %v", s.Data.TermEndDate, s.Data.Attributes.AutoRenew)
	}
	cu, err := b.client.GetCustomer(t.Context(), seedCustomer)
	if err != nil {
		t.Fatalf("GetCustomer: %v", err)
	}
	if cu.Data.Email != "mary.somerville@example.com" || cu.Data.Name != "Mary Somerville" {
		t.Errorf("customer data = %+v", cu.Data)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	tokens := func(b *bundle) int { return b.srv.Count(http.MethodPost, "/oauth2/token") }
	get := func(t *testing.T, b *bundle) {
		t.Helper()
		if _, err := b.client.GetSubscription(t.Context(), seedSub); err != nil {
			t.Fatalf("GetSubscription: %v", err)
		}
	}

	t.Run("cached", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for range 3 {
			get(t, b)
		}
		if n := tokens(b); n != 1 {
			t.Errorf("token requests = %d; want 1", n)
		}
	})
	t.Run("refreshed after expiry", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		get(t, b)
		b.clock.Advance(2 * time.Hour) // the sandbox's token has expired too
		get(t, b)
		if n := tokens(b); n != 2 {
			t.Errorf("token requests = %d; want 2", n)
		}
		if n := b.srv.Count(http.MethodGet, "/api/"); n != 2 {
			t.Errorf("API requests = %d; want 2 (refreshed before use, no 401)", n)
		}
	})
	t.Run("one retry after a 401", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		get(t, b)
		b.srv.ExpireTokens() // revoked early: only a 401 tells the client
		get(t, b)
		if n := tokens(b); n != 2 {
			t.Errorf("token requests = %d; want 2", n)
		}
		if n := b.srv.Count(http.MethodGet, "/api/"); n != 3 {
			t.Errorf("API requests = %d; want 3 (ok, 401, retried ok)", n)
		}
	})
	t.Run("a second 401 is an error", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv.AddFault(sandbox.Fault{Path: "/api/", Status: http.StatusUnauthorized})
		_, err := b.client.GetSubscription(t.Context(), seedSub)
		if err == nil || kindOf(t, err) != upstream.Unauthorized {
			t.Fatalf("GetSubscription = %v; want an unauthorized error", err)
		}
		if n := b.srv.Count(http.MethodGet, "/api/"); n != 2 {
			t.Errorf("API requests = %d; want 2", n)
		}
	})
}

func TestSecretNeverInErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-do-not-print-7f1e"
	srv := limiotest.NewServer(t, limiotest.WithCredentials("zsync", secret+"-other"))
	var ops []string
	var mu sync.Mutex
	c, err := limio.New(limio.Config{BaseURL: srv.URL, ClientID: "zsync", ClientSecret: secret},
		limio.WithObserver(func(op string, status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			ops = append(ops, fmt.Sprintf("%s %d", op, status))
		}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = c.GetSubscription(t.Context(), seedSub)
	if err == nil {
		t.Fatal("GetSubscription with a wrong secret succeeded")
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, secret) {
			t.Errorf("secret leaked in %q", s)
		}
	}
	if kindOf(t, err) != upstream.Unauthorized {
		t.Errorf("kind = %v; want unauthorized", kindOf(t, err))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, o := range ops {
		if strings.Contains(o, secret) {
			t.Errorf("secret leaked to the observer: %q", o)
		}
	}
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		fault      sandbox.Fault
		id         string
		want       upstream.Kind
		retryAfter time.Duration
	}{
		{desc: "429 with Retry-After", fault: sandbox.Fault{Path: "/api/", Status: 429, RetryAfterS: 7}, id: seedSub,
			want: upstream.Throttled, retryAfter: 7 * time.Second},
		{desc: "502", fault: sandbox.Fault{Path: "/api/", Status: 502}, id: seedSub, want: upstream.Retryable},
		{desc: "503 with Retry-After", fault: sandbox.Fault{Path: "/api/", Status: 503, RetryAfterS: 3}, id: seedSub,
			want: upstream.Retryable, retryAfter: 3 * time.Second},
		{desc: "409", fault: sandbox.Fault{Path: "/api/", Status: 409}, id: seedSub, want: upstream.Retryable},
		{desc: "400", fault: sandbox.Fault{Path: "/api/", Status: 400, Body: `{"message":"Bad request (missing required fields)"}`},
			id: seedSub, want: upstream.Permanent},
		{desc: "404 from the sandbox itself", id: "sub-doesnotexist", want: upstream.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tc.fault.Status != 0 {
				b.srv.AddFault(tc.fault)
			}
			_, err := b.client.GetSubscription(t.Context(), tc.id)
			if err == nil {
				t.Fatal("GetSubscription succeeded; want an error")
			}
			if got := kindOf(t, err); got != tc.want {
				t.Errorf("kind = %v; want %v (%v)", got, tc.want, err)
			}
			if got := upstream.RetryAfter(err); got != tc.retryAfter {
				t.Errorf("RetryAfter = %v; want %v", got, tc.retryAfter)
			}
			if tc.want == upstream.NotFound && !errors.Is(err, upstream.ErrNotFound) {
				t.Errorf("errors.Is(%v, ErrNotFound) = false", err)
			}
			if tc.fault.Body != "" && !strings.Contains(err.Error(), "missing required fields") {
				t.Errorf("error %q lacks Limio's message", err)
			}
		})
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	srv := limiotest.NewServer(t)
	srv.AddFault(sandbox.Fault{Path: "/api/", LatencyMS: 2000})
	c, err := limio.New(limio.Config{BaseURL: srv.URL, ClientID: "sandbox", ClientSecret: "sandbox", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSubscription(t.Context(), seedSub)
	if !upstream.IsRetryable(err) {
		t.Errorf("GetSubscription on a slow Limio = %v; want a retryable error", err)
	}
}

func TestObserver(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	b := setup(t, limio.WithObserver(func(op string, status int, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s %d", op, status))
	}))
	_, _ = b.client.GetSubscription(t.Context(), seedSub)
	_, _ = b.client.GetSubscription(t.Context(), "sub-missing")
	mu.Lock()
	defer mu.Unlock()
	want := []string{"GET /objects/limio/subscriptions/{id} 200", "GET /objects/limio/subscriptions/{id} 404"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("observed %v; want %v", seen, want)
	}
}

func TestBadIDsNeverReachLimio(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	long := "sub-" + strings.Repeat("a", 100)
	for _, id := range []string{"../x", "a/b", "", long, "sub-1?x=1", "sub 1", "%2e%2e", ".."} {
		calls := map[string]error{}
		_, calls["GetSubscription"] = b.client.GetSubscription(ctx, id)
		_, calls["GetCustomer"] = b.client.GetCustomer(ctx, id)
		_, calls["GetRelated"] = b.client.GetRelated(ctx, id)
		_, calls["Resolve"] = b.client.Resolve(ctx, id)
		calls["Remember key"] = b.client.Remember(ctx, id, seedSub)
		calls["Remember id"] = b.client.Remember(ctx, seedZuora, id)
		var p limio.Patch
		p.Set(limio.FieldStatus, "active")
		calls["Update"] = b.client.Update(ctx, limio.PathSubscriptions, id, p)
		calls["Create"] = b.client.Create(ctx, limio.PathCustomers, id, map[string]any{"record_type": "customer", "data": map[string]any{}})
		calls["PostTimeline"] = b.client.PostTimeline(ctx, limio.TimelineEvent{ForSubscription: limio.TimelineTarget{ID: id}, Name: "n", Type: "t"})
		for name, err := range calls {
			if err == nil || kindOf(t, err) != upstream.Permanent {
				t.Errorf("%s(%q) = %v; want a permanent error", name, id, err)
			}
		}
	}
	var p limio.Patch
	p.Set(limio.FieldStatus, "active")
	if err := b.client.Update(ctx, "../subscriptions", seedSub, p); err == nil {
		t.Error("Update with a bad path type succeeded")
	}
	if err := b.client.Create(ctx, "nope", "cus-1", map[string]any{}); err == nil {
		t.Error("Create with a bad path type succeeded")
	}
	if n := len(b.srv.Requests()); n != 0 {
		t.Errorf("requests reached the sandbox: %v", b.srv.Requests())
	}
}

func TestUpdateSendsOnlyChangedFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var p limio.Patch
	p.Set(limio.FieldAutoRenew, false)
	p.Set(limio.FieldTermEnd, "2028-03-22")
	p.Set(limio.FieldStatus, limio.StatusCancelled)
	if err := b.client.Update(t.Context(), limio.PathSubscriptions, seedSub, p); err != nil {
		t.Fatalf("Update: %v", err)
	}
	sent := b.bodies.get("PUT /api/objects/limio/subscriptions/" + seedSub)
	want := `{"data":{"attributes":{"autoRenew":false},"termEndDate":"2028-03-22"},"status":"cancelled"}`
	if len(sent) != 1 || sent[0] != want {
		t.Errorf("PUT bodies = %q; want [%s]", sent, want)
	}
	got, _ := b.srv.Get(limio.PathSubscriptions, seedSub)
	data := got["data"].(map[string]any)
	if got["status"] != "cancelled" || data["termEndDate"] != "2028-03-22" ||
		data["attributes"].(map[string]any)["autoRenew"] != false {
		t.Errorf("stored = %v", got)
	}
	// Nested fields the patch didn't name survive.
	if data["termStartDate"] != "2026-03-22" || data["tracking"].(map[string]any)["purchaseCountryCode"] != "GB" ||
		data["zuora"].(map[string]any)["subscriptionNumber"] != seedZuora || got["reference"] != seedRef {
		t.Errorf("untouched fields lost: %v", got)
	}
	if got["updated"] != "2026-11-24T09:00:00.000Z" {
		t.Errorf("updated = %v; want the sandbox clock", got["updated"])
	}

	// An empty patch sends nothing.
	if err := b.client.Update(t.Context(), limio.PathSubscriptions, seedSub, limio.Patch{}); err != nil {
		t.Fatalf("Update(empty): %v", err)
	}
	if n := b.srv.Writes(); n != 1 {
		t.Errorf("Writes = %d; want 1", n)
	}

	// A missing object is NotFound, not created.
	err := b.client.Update(t.Context(), limio.PathSchedules, "schedule-missing", p)
	if kindOf(t, err) != upstream.NotFound {
		t.Errorf("Update(missing) = %v; want not found", err)
	}
}

func TestCreateIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := limio.NewID("schedule", seedZuora, "C-00000101:2027-03-22")
	entry := limio.Schedule{
		Envelope: limio.Envelope{RecordType: limio.RecordSchedule, Status: limio.SchedulePending, Related: seedSub},
		Data: limio.ScheduleData{Date: "2027-03-22", Amount: "20.00", Currency: "GBP",
			Description: "Digital Pack — Monthly", Reference: "C-00000101:2027-03-22", Type: "payment"},
	}
	for range 2 {
		if err := b.client.Create(t.Context(), limio.PathSchedules, id, entry); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	got := b.srv.Schedules(seedSub)
	n := 0
	for _, s := range got {
		if s.Data.Reference == "C-00000101:2027-03-22" {
			n++
			if s.ID != id || s.Status != limio.SchedulePending || s.Data.Amount != "20.00" || s.Related != seedSub {
				t.Errorf("created entry = %+v", s)
			}
		}
	}
	if n != 1 || len(got) != 4 {
		t.Errorf("schedule entries = %d (%d with the new reference); want 4 (1)", len(got), n)
	}

	// A mismatched id or a missing record_type is refused before a request.
	before := b.srv.Count("", "/api/")
	entry.ID = "schedule-other"
	if err := b.client.Create(t.Context(), limio.PathSchedules, id, entry); err == nil {
		t.Error("Create with a mismatched id succeeded")
	}
	if err := b.client.Create(t.Context(), limio.PathCustomers, "cus-x", map[string]any{"data": map[string]any{}}); err == nil {
		t.Error("Create without record_type succeeded")
	}
	if err := b.client.Create(t.Context(), limio.PathCustomers, "cus-x", []int{1}); err == nil {
		t.Error("Create of a non-object succeeded")
	}
	if after := b.srv.Count("", "/api/"); after != before {
		t.Errorf("refused creates sent %d requests", after-before)
	}
}

func TestGetRelated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// An event related to the subscription must be ignored.
	if err := b.client.PostTimeline(t.Context(), limio.TimelineEvent{
		ForSubscription: limio.TimelineTarget{ID: seedSub}, Name: "zsync", Type: "subscription.synced"}); err != nil {
		t.Fatalf("PostTimeline: %v", err)
	}
	rel, err := b.client.GetRelated(t.Context(), seedSub)
	if err != nil {
		t.Fatalf("GetRelated: %v", err)
	}
	if rel.Customer == nil || rel.Customer.ID != seedCustomer || rel.Customer.Data.Email != "mary.somerville@example.com" {
		t.Errorf("customer = %+v", rel.Customer)
	}
	types := map[string]bool{}
	for _, a := range rel.Addresses {
		types[a.Data.Type] = true
	}
	if len(rel.Addresses) != 2 || !types[limio.AddressBilling] || !types[limio.AddressDelivery] {
		t.Errorf("addresses = %+v", rel.Addresses)
	}
	statuses := map[string]int{}
	for _, s := range rel.Schedules {
		statuses[s.Status]++
		if s.Data.Amount != "20.00" || !strings.HasPrefix(s.Data.Reference, "C-00000101:") {
			t.Errorf("schedule = %+v", s)
		}
	}
	if statuses[limio.ScheduleActive] != 1 || statuses[limio.SchedulePending] != 2 {
		t.Errorf("schedule statuses = %v; want 1 active, 2 pending", statuses)
	}
	if n := b.srv.Count(http.MethodGet, "/api/"); n != 1 {
		t.Errorf("GET requests = %d; want 1", n)
	}

	if _, err := b.client.GetRelated(t.Context(), "sub-missing"); kindOf(t, err) != upstream.NotFound {
		t.Errorf("GetRelated(missing) = %v; want not found", err)
	}
}

func TestPostTimeline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ev := limio.TimelineEvent{
		ForSubscription: limio.TimelineTarget{Name: seedRef},
		Name:            "Synced from Zuora", Type: "zsync.sync", Source: "webhook",
		Fields: []limio.TimelineField{{Label: "changes", Type: "json", Value: []string{"term"}}},
	}
	if err := b.client.PostTimeline(t.Context(), ev); err != nil {
		t.Fatalf("PostTimeline: %v", err)
	}
	evs := b.srv.Events(seedSub)
	if len(evs) != 1 {
		t.Fatalf("events = %v; want 1", evs)
	}
	data := evs[0]["data"].(map[string]any)
	if evs[0]["status"] != "submitted" || data["type"] != "zsync.sync" || data["source"] != "webhook" {
		t.Errorf("event = %v", evs[0])
	}
	if !strings.HasPrefix(evs[0]["id"].(string), "event-") {
		t.Errorf("event id = %v", evs[0]["id"])
	}
	if err := b.client.PostTimeline(t.Context(), limio.TimelineEvent{ForSubscription: limio.TimelineTarget{ID: seedSub}}); err == nil {
		t.Error("PostTimeline without name and type succeeded")
	}
	ev.ForSubscription = limio.TimelineTarget{ID: "sub-missing"}
	if err := b.client.PostTimeline(t.Context(), ev); kindOf(t, err) != upstream.NotFound {
		t.Errorf("PostTimeline(missing sub) = %v; want not found", err)
	}
}

func TestListSubscriptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addSubs(t, b.srv, 7)
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		items, next, err := b.client.ListSubscriptions(t.Context(), cursor, 3)
		if err != nil {
			t.Fatalf("ListSubscriptions: %v", err)
		}
		pages++
		for _, s := range items {
			if seen[s.ID] {
				t.Errorf("%s listed twice", s.ID)
			}
			seen[s.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 8 || pages != 3 {
		t.Errorf("listed %d subscriptions in %d pages; want 8 in 3", len(seen), pages)
	}
}

// addSubs stores n subscriptions linked to Zuora numbers A-S9000000i
// (references REFi).
func addSubs(t *testing.T, srv *limiotest.Server, n int) {
	t.Helper()
	for i := range n {
		if err := srv.Put(limio.PathSubscriptions, limio.Subscription{
			Envelope: limio.Envelope{ID: fmt.Sprintf("sub-gen%03d", i), RecordType: limio.RecordSubscription,
				Reference: fmt.Sprintf("REF%03d", i), Name: fmt.Sprintf("REF%03d", i), Status: limio.StatusActive},
			Data: limio.SubscriptionData{Zuora: &limio.ZuoraRef{SubscriptionNumber: fmt.Sprintf("A-S9%07d", i)}},
		}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
}
