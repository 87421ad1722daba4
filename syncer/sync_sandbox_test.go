package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// Sync driven through the real clients against the Zuora and Limio sandboxes.

var (
	_ Zuora = (*zuora.Client)(nil)
	_ Limio = (*limio.Client)(nil)
)

// memIndex is an in-memory limio.Index.
type memIndex struct {
	mu sync.Mutex
	m  map[string]string
}

func (x *memIndex) Get(_ context.Context, key string) (string, bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	id, ok := x.m[key]
	return id, ok, nil
}

func (x *memIndex) Put(_ context.Context, key, subID string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.m[key] = subID
	return nil
}

type sandboxes struct {
	fx    fixture
	zs    *zuoratest.Server
	ls    *limiotest.Server
	index *memIndex
	s     *Syncer
}

// newSandboxes seeds Zuora with the case's subscription and account (the
// sandbox computes the billing preview from the charges) and Limio with the
// case's Limio side. The sandbox computes the preview from the charges, so
// a case that extends the term also extends its charges here.
func newSandboxes(t *testing.T, caseName string) *sandboxes {
	t.Helper()
	return newSandboxesFor(t, loadCase(t, caseName))
}

// newSandboxesFor seeds the sandboxes with fx, as newSandboxes does.
func newSandboxesFor(t *testing.T, fx fixture) *sandboxes {
	t.Helper()
	if end := fx.z.Subscription.TermEndDate; end > "2027-03-01" {
		rps := append([]zuora.RatePlan(nil), fx.z.Subscription.RatePlans...)
		for i := range rps {
			rps[i].RatePlanCharges = append([]zuora.Charge(nil), rps[i].RatePlanCharges...)
			for j := range rps[i].RatePlanCharges {
				rps[i].RatePlanCharges[j].EffectiveEndDate = end
			}
		}
		fx.z.Subscription.RatePlans, fx.z.Subscription.SubscriptionEndDate = rps, end
	}
	sb := &sandboxes{fx: fx, zs: zuoratest.NewServer(t), ls: limiotest.NewServer(t), index: &memIndex{m: map[string]string{}}}
	if err := sb.zs.PutSubscription(*fx.z.Subscription); err != nil {
		t.Fatal(err)
	}
	if err := sb.zs.PutAccount(*fx.z.Account); err != nil {
		t.Fatal(err)
	}
	if l := fx.limio; l.Subscription != nil {
		objs := []struct {
			path string
			obj  any
		}{{limio.PathSubscriptions, l.Subscription}, {limio.PathCustomers, l.Customer}}
		for _, a := range l.Addresses {
			objs = append(objs, struct {
				path string
				obj  any
			}{limio.PathAddress, a})
		}
		for _, e := range l.Schedules {
			objs = append(objs, struct {
				path string
				obj  any
			}{limio.PathSchedules, e})
		}
		for _, o := range objs {
			if err := sb.ls.Put(o.path, o.obj); err != nil {
				t.Fatal(err)
			}
		}
	}
	zc, err := zuora.New(sb.zs.Config())
	if err != nil {
		t.Fatal(err)
	}
	lc, err := limio.New(limio.Config{BaseURL: sb.ls.URL, ClientID: "sandbox", ClientSecret: "sandbox"}, limio.WithIndex(sb.index))
	if err != nil {
		t.Fatal(err)
	}
	sb.s = New(fx.cfg, zc, lc, zaptest.NewLogger(t), WithClock(func() time.Time { return fx.now }))
	return sb
}

// zuoraReads counts the API reads Zuora served (tokens aside).
func (sb *sandboxes) zuoraReads() int {
	return sb.zs.Count(http.MethodGet, "/v1/") + sb.zs.Count(http.MethodPost, "/v1/operations/")
}

// limioWrites counts the API writes Limio received (PUTs and timeline posts),
// failed ones included.
func (sb *sandboxes) limioWrites() int {
	return sb.ls.Count(http.MethodPut, "/api/") + sb.ls.Count(http.MethodPost, "/api/timeline/")
}

// state is Limio's subscription and related objects as JSON, without the
// timestamps the sandbox stamps.
func (sb *sandboxes) state(t *testing.T, subID string) string {
	t.Helper()
	sub, ok := sb.ls.Subscription(subID)
	if !ok {
		t.Fatalf("limio has no %s", subID)
	}
	cus, _ := sb.ls.Customer(sub.Customer)
	addrs, scheds := sb.ls.Addresses(subID), sb.ls.Schedules(subID)
	sub.Created, sub.Updated, cus.Created, cus.Updated = "", "", "", ""
	for i := range addrs {
		addrs[i].Created, addrs[i].Updated = "", ""
	}
	for i := range scheds {
		scheds[i].Created, scheds[i].Updated = "", ""
	}
	b, err := json.MarshalIndent(map[string]any{"subscription": sub, "customer": cus, "addresses": addrs, "schedules": scheds}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSandboxCreateThenUnchanged(t *testing.T) {
	t.Parallel()
	sb := newSandboxes(t, "limio_unknown")
	out, err := sb.s.Sync(t.Context(), number, manual)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	wantID := limio.NewID("sub", number)
	if out.Result != Created || out.LimioID != wantID || out.Subscription != number {
		t.Fatalf("Sync = %+v; want created %s", out, wantID)
	}
	if got := sb.zuoraReads(); got > 3 {
		t.Errorf("zuora reads = %d; want ≤ 3", got)
	}
	sub, _ := sb.ls.Subscription(wantID)
	if !sub.Data.CreatedBySync || sub.Reference != number || sub.Data.Zuora == nil || sub.Data.Zuora.SubscriptionNumber != number ||
		sub.Status != limio.StatusActive || deref(sub.Data.TermEndDate) != "2027-03-01" {
		t.Errorf("created subscription = %+v", sub)
	}
	var refs []string
	for _, e := range sb.ls.Schedules(wantID) {
		refs = append(refs, e.Data.Reference+" "+e.Status+" "+e.Data.Amount+" "+e.Data.Currency)
	}
	sort.Strings(refs)
	want := "C-00000101:2026-12-01 pending 20.00 USD,C-00000101:2027-01-01 pending 20.00 USD,C-00000101:2027-02-01 pending 20.00 USD"
	if got := strings.Join(refs, ","); got != want {
		t.Errorf("schedule = %s; want %s", got, want)
	}
	if n := len(sb.ls.Addresses(wantID)); n != 2 {
		t.Errorf("addresses = %d; want 2", n)
	}
	if cus, ok := sb.ls.Customer(sub.Customer); !ok || cus.Data.Email != "ada@example.com" {
		t.Errorf("customer %s = %+v, %v", sub.Customer, cus, ok)
	}
	if id, _, _ := sb.index.Get(t.Context(), number); id != wantID {
		t.Errorf("index[%s] = %q; want %q", number, id, wantID)
	}

	reads, writes := sb.zuoraReads(), sb.limioWrites()
	out, err = sb.s.Sync(t.Context(), number, manual)
	if err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	if out.Result != Unchanged || len(out.Changes) != 0 {
		t.Errorf("second Sync = %s %v; want unchanged", out.Result, out.Changes)
	}
	if got := sb.limioWrites() - writes; got != 0 {
		t.Errorf("second Sync: %d Limio writes; want 0", got)
	}
	if got := sb.zuoraReads() - reads; got > 3 {
		t.Errorf("second Sync: %d Zuora reads; want ≤ 3", got)
	}
}

func TestSandboxUpdate(t *testing.T) {
	t.Parallel()
	sb := newSandboxes(t, "in_sync")
	sub := *sb.fx.z.Subscription
	sub.RatePlans = append([]zuora.RatePlan(nil), sub.RatePlans...)
	sub.RatePlans[0].RatePlanCharges = append([]zuora.Charge(nil), sub.RatePlans[0].RatePlanCharges...)
	sub.RatePlans[0].RatePlanCharges[0].Price = zuora.NewAmount("24.99")
	sub.ID, sub.Version = "8a8082c4814b8e0e01814c1e8f3a0004", 4
	if err := sb.zs.PutSubscription(sub); err != nil {
		t.Fatal(err)
	}
	subID := sb.fx.limio.Subscription.ID
	out, err := sb.s.Sync(t.Context(), subID, Trigger{Source: SourceCallout, EventType: "UpdateProduct", CreatedByID: "csr"})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if out.Result != Updated || out.Subscription != number || out.LimioID != subID {
		t.Fatalf("Sync = %+v; want updated", out)
	}
	for _, e := range sb.ls.Schedules(subID) {
		if e.Data.Date >= "2026-12-01" && e.Data.Amount != "24.99" {
			t.Errorf("schedule %s amount = %s; want 24.99", e.Data.Reference, e.Data.Amount)
		}
	}
	if got, _ := sb.ls.Subscription(subID); got.Data.Zuora == nil || got.Data.Zuora.Version != 4 {
		t.Errorf("data.zuora = %+v; want version 4", got.Data.Zuora)
	}
	writes := sb.limioWrites()
	if out, err := sb.s.Sync(t.Context(), number, manual); err != nil || out.Result != Unchanged || sb.limioWrites() != writes {
		t.Errorf("second Sync = %s, %v, %d writes; want unchanged, none", out.Result, err, sb.limioWrites()-writes)
	}
}

func TestSandboxNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give  string
		style zuoratest.NotFoundStyle
	}{
		{"A-S09999999", zuoratest.NotFound404},
		{"A-S09999999", zuoratest.NotFound200},
		{"sub-0000000000000000000000000000dead", zuoratest.NotFound404},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			sb := newSandboxes(t, "limio_unknown")
			sb.zs.SetNotFoundStyle(tt.style)
			out, err := sb.s.Sync(t.Context(), tt.give, manual)
			if out.Result != NotFound {
				t.Errorf("Sync = %+v; want not_found", out)
			}
			if !errors.Is(err, ErrNotFound) || !IsPermanent(err) {
				t.Errorf("Sync error = %v; want permanent ErrNotFound", err)
			}
			if sb.ls.Writes() != 0 {
				t.Errorf("limio writes = %d; want 0", sb.ls.Writes())
			}
		})
	}
}

// A fault on each write of a sync (one at a time), then a re-run: Limio ends
// as after a clean run, without duplicates, and a third run writes nothing.
func TestSandboxFaultAfterEachWrite(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"limio_unknown", "renewal", "charge_removed", "contact_edited"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clean := newSandboxes(t, name)
			out, err := clean.s.Sync(t.Context(), number, manual)
			if err != nil {
				t.Fatal(err)
			}
			want := clean.state(t, out.LimioID)
			var writes []sandbox.Fault
			for key := range clean.ls.Requests() {
				method, path, _ := strings.Cut(key, " ")
				if method == http.MethodPut || method == http.MethodPost && strings.HasPrefix(path, "/api/timeline/") {
					writes = append(writes, sandbox.Fault{Method: method, Path: path, Status: http.StatusBadGateway, Count: 1})
				}
			}
			if len(writes) < 2 {
				t.Fatalf("clean run made %d writes; the case should need several", len(writes))
			}
			t.Logf("%d writes to fault, one at a time", len(writes))
			for _, f := range writes {
				sb := newSandboxes(t, name)
				sb.ls.AddFault(f)
				_, err := sb.s.Sync(t.Context(), number, manual)
				timeline := strings.HasPrefix(f.Path, "/api/timeline/")
				if timeline != (err == nil) { // only the timeline's failure is not the sync's
					t.Errorf("fault on %s %s: Sync error = %v", f.Method, f.Path, err)
				}
				if err != nil && (!upstream.IsRetryable(err) || IsPermanent(err)) {
					t.Errorf("fault on %s: error %v; want retryable", f.Path, err)
				}
				if _, err := sb.s.Sync(t.Context(), number, manual); err != nil {
					t.Fatalf("fault on %s: re-run: %v", f.Path, err)
				}
				if got := sb.state(t, out.LimioID); got != want {
					t.Errorf("fault on %s: state after re-run differs from a clean run:\n%s\nwant\n%s", f.Path, got, want)
				}
				writes := sb.limioWrites()
				again, err := sb.s.Sync(t.Context(), number, manual)
				if err != nil || again.Result != Unchanged || sb.limioWrites() != writes {
					t.Errorf("fault on %s: third run = %s, %v, %d writes; want unchanged, none", f.Path, again.Result, err, sb.limioWrites()-writes)
				}
			}
		})
	}
}
