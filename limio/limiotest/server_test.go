package limiotest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
)

const seedSub = "sub-5c3d6e2f1a9b4c7d8e0f1a2b3c4d5e6f"

type harness struct {
	srv *limiotest.Server
	tok string
}

func start(t *testing.T, opts ...limiotest.Option) *harness {
	t.Helper()
	srv := limiotest.NewServer(t, opts...)
	if err := srv.Seed(os.DirFS("../testdata/seed")); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	h := &harness{srv: srv}
	h.tok = h.token(t)
	return h
}

func (h *harness) token(t *testing.T) string {
	t.Helper()
	resp, err := http.PostForm(h.srv.URL+"/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"sandbox"}, "client_secret": {"sandbox"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token: %v %+v", err, tr)
	}
	return tr.AccessToken
}

// do sends a request with the harness token (tok "" sends none) and decodes
// a JSON answer.
func (h *harness) do(t *testing.T, method, path, body string, auth bool) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, h.srv.URL+path, rd)
	if auth {
		req.Header.Set("Authorization", "Bearer "+h.tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestAuth(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := start(t, limiotest.WithClock(clk), limiotest.WithTokenTTL(time.Minute))
	if st, _ := h.do(t, "GET", "/api/objects/limio/subscriptions/"+seedSub, "", false); st != 401 {
		t.Errorf("no token: status %d; want 401", st)
	}
	if st, _ := h.do(t, "GET", "/api/objects/limio/subscriptions/"+seedSub, "", true); st != 200 {
		t.Errorf("fresh token: status %d; want 200", st)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if st, _ := h.do(t, "GET", "/api/objects/limio/subscriptions/"+seedSub, "", true); st != 401 {
		t.Errorf("expired token: status %d; want 401", st)
	}
	resp, err := http.PostForm(h.srv.URL+"/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"sandbox"}, "client_secret": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("wrong secret: token status %d; want 401", resp.StatusCode)
	}
}

func TestPut(t *testing.T) {
	t.Parallel()
	sub := "/api/objects/limio/subscriptions/" + seedSub
	tests := []struct {
		desc, path, body string
		want             int
	}{
		{"malformed JSON", sub, `{"data":`, 400},
		{"no data", sub, `{"name":"x"}`, 400},
		{"data not an object", sub, `{"data":[1]}`, 400},
		{"id mismatch", sub, `{"id":"sub-other","data":{}}`, 400},
		{"unknown id without record_type", "/api/objects/limio/customers/cus-new", `{"data":{"name":"x"}}`, 404},
		{"record_type of another type", "/api/objects/limio/customers/cus-new", `{"record_type":"subscription","data":{}}`, 400},
		{"unknown path type", "/api/objects/limio/widgets/w-1", `{"data":{}}`, 404},
		{"create", "/api/objects/limio/customers/cus-new", `{"id":"cus-new","record_type":"customer","data":{"name":"New"}}`, 200},
		{"update", sub, `{"data":{"attributes":{"autoRenew":false}},"status":"cancelled"}`, 200},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := start(t)
			st, _ := h.do(t, "PUT", tc.path, tc.body, true)
			if st != tc.want {
				t.Errorf("PUT %s %s: status %d; want %d", tc.path, tc.body, st, tc.want)
			}
			wantWrites := 0
			if tc.want == 200 {
				wantWrites = 1
			}
			if h.srv.Writes() != wantWrites {
				t.Errorf("Writes = %d; want %d", h.srv.Writes(), wantWrites)
			}
		})
	}
}

func TestPutMergesAndStamps(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	h := start(t, limiotest.WithClock(func() time.Time { return now }))
	st, out := h.do(t, "PUT", "/api/objects/limio/subscriptions/"+seedSub,
		`{"data":{"attributes":{"autoRenew":false},"zuora":{"version":4}},"status":"cancelled","name":"NEWNAME"}`, true)
	if st != 200 || out["id"] != seedSub || out["sort_key"] != "object/subscription" {
		t.Fatalf("PUT = %d %v", st, out)
	}
	s, ok := h.srv.Subscription(seedSub)
	if !ok {
		t.Fatal("subscription gone")
	}
	if s.Status != "cancelled" || s.Name != "NEWNAME" || s.Reference != "3V053CN9SFIG" {
		t.Errorf("envelope = %+v", s.Envelope)
	}
	if *s.Data.Attributes.AutoRenew || s.Data.Zuora.Version != 4 || s.Data.Zuora.SubscriptionNumber != "A-S00000101" ||
		s.Data.TermStartDate != "2026-03-22" {
		t.Errorf("data = %+v zuora %+v", s.Data, s.Data.Zuora)
	}
	if s.Updated != "2026-11-24T09:30:00.000Z" {
		t.Errorf("updated = %q", s.Updated)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	h := start(t)
	for i := range 4 {
		if err := h.srv.Put(limio.PathSubscriptions, map[string]any{
			"id": fmt.Sprintf("sub-%d", i), "record_type": "subscription", "reference": fmt.Sprintf("R%d", i),
			"data": map[string]any{"zuora": map[string]any{"subscriptionNumber": fmt.Sprintf("A-S%d", i)}, "secret": "x"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	cursor := ""
	for range 10 {
		path := "/api/objects/limio/subscriptions?limit=2"
		if cursor != "" {
			path += "&queryMore=" + url.QueryEscape(cursor)
		}
		st, out := h.do(t, "GET", path, "", true)
		if st != 200 {
			t.Fatalf("GET %s = %d %v", path, st, out)
		}
		for _, it := range out["items"].([]any) {
			m := it.(map[string]any)
			ids = append(ids, m["id"].(string))
			if m["id"] == "sub-2" {
				data := m["data"].(map[string]any)
				if data["zuora"].(map[string]any)["subscriptionNumber"] != "A-S2" || data["secret"] != nil || m["reference"] != "R2" {
					t.Errorf("summary = %v; want reference and data.zuora only", m)
				}
			}
		}
		next, _ := out["queryMore"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	want := []string{"sub-0", "sub-1", "sub-2", "sub-3", seedSub}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("listed %v; want %v", ids, want)
	}
	if st, _ := h.do(t, "GET", "/api/objects/limio/subscriptions?reference=R1", "", true); st != 400 {
		t.Errorf("server-side filter: status %d; want 400", st)
	}
	if st, _ := h.do(t, "GET", "/api/objects/limio/subscriptions?queryMore=!!", "", true); st != 400 {
		t.Errorf("bad cursor: status %d; want 400", st)
	}
}

func TestRelatedAndTimeline(t *testing.T) {
	t.Parallel()
	h := start(t)
	st, out := h.do(t, "POST", "/api/timeline/subscription",
		`{"forSubscription":{"id":"`+seedSub+`"},"name":"Synced","type":"zsync.sync","source":"webhook"}`, true)
	if st != 200 || out["status"] != "submitted" || !strings.HasPrefix(fmt.Sprint(out["id"]), "event-") || out["reference"] == "" {
		t.Fatalf("timeline = %d %v", st, out)
	}
	for _, p := range []string{"/api/objects/limio/subscription/" + seedSub + "/related", "/api/objects/limio/subscriptions/" + seedSub + "/related"} {
		st, out := h.do(t, "GET", p, "", true)
		if st != 200 {
			t.Fatalf("GET %s = %d", p, st)
		}
		counts := map[string]int{}
		for _, it := range out["items"].([]any) {
			counts[it.(map[string]any)["record_type"].(string)]++
		}
		want := map[string]int{"customer": 1, "address": 2, "schedule": 3, "event": 1}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Errorf("GET %s record types = %v; want %v", p, counts, want)
		}
	}
	if st, _ := h.do(t, "GET", "/api/objects/limio/subscription/sub-missing/related", "", true); st != 404 {
		t.Errorf("related of a missing subscription: %d; want 404", st)
	}
	if st, _ := h.do(t, "POST", "/api/timeline/subscription", `{"forSubscription":{"id":"`+seedSub+`"}}`, true); st != 400 {
		t.Errorf("timeline without name/type: %d; want 400", st)
	}
	ev := h.srv.Events(seedSub)
	if len(ev) != 1 || ev[0]["related"] != seedSub {
		t.Errorf("Events = %v", ev)
	}
}

func TestAdminAndReset(t *testing.T) {
	t.Parallel()
	h := start(t)
	st, _ := h.do(t, "PUT", "/sandbox/objects/customers/cus-admin", `{"record_type":"customer","data":{"email":"a@example.com"}}`, false)
	if st != 200 {
		t.Fatalf("admin PUT = %d", st)
	}
	if c, ok := h.srv.Customer("cus-admin"); !ok || c.Data.Email != "a@example.com" {
		t.Errorf("Customer(cus-admin) = %+v, %v", c, ok)
	}
	if st, out := h.do(t, "GET", "/sandbox/objects/customers/cus-admin", "", false); st != 200 || out["id"] != "cus-admin" {
		t.Errorf("admin GET = %d %v", st, out)
	}
	if st, out := h.do(t, "GET", "/sandbox/related/"+seedSub, "", false); st != 200 || len(out["items"].([]any)) != 6 {
		t.Errorf("admin related = %d %v", st, out)
	}
	if h.srv.Writes() != 0 || h.srv.Count("", "/sandbox/") != 0 {
		t.Errorf("admin calls counted: writes %d, requests %v", h.srv.Writes(), h.srv.Requests())
	}
	// An API write, then reset: back to the seed.
	if st, _ := h.do(t, "PUT", "/api/objects/limio/subscriptions/"+seedSub, `{"status":"cancelled","data":{}}`, true); st != 200 {
		t.Fatalf("PUT = %d", st)
	}
	if st, _ := h.do(t, "POST", "/sandbox/reset", "", false); st != 204 {
		t.Fatalf("reset = %d", st)
	}
	if _, ok := h.srv.Customer("cus-admin"); ok {
		t.Error("reset kept an unseeded object")
	}
	if s, _ := h.srv.Subscription(seedSub); s.Status != "active" {
		t.Errorf("after reset status = %q; want the seeded active", s.Status)
	}
	if h.srv.Writes() != 0 || len(h.srv.Requests()) != 0 {
		t.Errorf("reset kept counts")
	}
}

func TestSeedShapes(t *testing.T) {
	t.Parallel()
	srv := limiotest.New()
	err := srv.Seed(fstest.MapFS{
		"customers/cus-a.json":   {Data: []byte(`{"record_type":"customer","data":{"name":"A"}}`)},
		"schedules/several.json": {Data: []byte(`[{"id":"schedule-1","related":"sub-x","data":{"amount":"1.00"}},{"id":"schedule-2","related":"sub-x","data":{}}]`)},
		"README.md":              {Data: []byte("ignored")},
	})
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	if c, ok := srv.Customer("cus-a"); !ok || c.Data.Name != "A" {
		t.Errorf("id from the file name: %+v %v", c, ok)
	}
	if got := srv.Schedules("sub-x"); len(got) != 2 || got[0].Data.Amount != "1.00" {
		t.Errorf("array file: %+v", got)
	}
	if err := srv.Seed(fstest.MapFS{"widgets/w.json": {Data: []byte(`{}`)}}); err == nil {
		t.Error("Seed accepted an unknown path type")
	}
	if err := srv.Seed(fstest.MapFS{"customers/bad.json": {Data: []byte(`{`)}}); err == nil {
		t.Error("Seed accepted malformed JSON")
	}
}

// TestConcurrent runs API writes and reads and Go accessors at once (run
// with -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	h := start(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				body := fmt.Sprintf(`{"data":{"n%d":%d}}`, i, j)
				if st, _ := h.do(t, "PUT", "/api/objects/limio/subscriptions/"+seedSub, body, true); st != 200 {
					t.Errorf("PUT = %d", st)
				}
				h.do(t, "GET", "/api/objects/limio/subscription/"+seedSub+"/related", "", true)
				_, _ = h.srv.Subscription(seedSub)
				_ = h.srv.Schedules(seedSub)
			}
		}()
	}
	wg.Wait()
	got, _ := h.srv.Get(limio.PathSubscriptions, seedSub)
	data := got["data"].(map[string]any)
	for i := range 8 {
		if data[fmt.Sprintf("n%d", i)] != float64(9) {
			t.Errorf("data.n%d = %v; want 9", i, data[fmt.Sprintf("n%d", i)])
		}
	}
	if h.srv.Writes() != 80 {
		t.Errorf("Writes = %d; want 80", h.srv.Writes())
	}
}
