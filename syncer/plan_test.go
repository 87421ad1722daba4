package syncer

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/plan")

// A plan case is testdata/plan/<name>.json: JSON merge patches (RFC 7386)
// over the documented-shape fixtures in testdata/base (Zuora's subscription,
// account and billing-preview responses; the Limio subscription and its
// related objects). The expected plan is testdata/plan/<name>.golden.
type planCase struct {
	Description string          `json:"description"`
	Now         string          `json:"now"` // default 2026-11-24
	Config      Config          `json:"config"`
	Limio       json.RawMessage `json:"limio"`
	Unknown     bool            `json:"limio_unknown"` // Limio doesn't know the subscription
	Zuora       struct {
		Subscription json.RawMessage `json:"subscription"`
		Account      json.RawMessage `json:"account"`
		Preview      json.RawMessage `json:"preview"`
	} `json:"zuora"`
}

// limioFixture is the Limio side of a case.
type limioFixture struct {
	Subscription *limio.Subscription `json:"subscription"`
	Customer     *limio.Customer     `json:"customer"`
	Addresses    []limio.Address     `json:"addresses"`
	Schedules    []limio.Schedule    `json:"schedules"`
}

type fixture struct {
	cfg   Config
	now   time.Time
	z     ZuoraState
	l     LimioState
	limio limioFixture
}

func loadCase(t *testing.T, name string) fixture {
	t.Helper()
	var c planCase
	decodeFile(t, filepath.Join("testdata", "plan", name+".json"), &c)
	f := fixture{cfg: c.Config, now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	if c.Now != "" {
		now, err := time.Parse(dateLayout, c.Now)
		if err != nil {
			t.Fatal(err)
		}
		f.now = now.Add(9 * time.Hour)
	}
	f.z.Subscription = new(zuora.Subscription)
	patched(t, "zuora_subscription.json", c.Zuora.Subscription, f.z.Subscription)
	f.z.Account = new(zuora.Account)
	patched(t, "zuora_account.json", c.Zuora.Account, f.z.Account)
	var bp zuora.BillingPreview
	patched(t, "zuora_preview.json", c.Zuora.Preview, &bp)
	f.z.Preview = bp.InvoiceItems
	if !c.Unknown {
		patched(t, "limio.json", c.Limio, &f.limio)
		f.l = LimioState{Subscription: f.limio.Subscription, Related: limio.Related{
			Customer: f.limio.Customer, Addresses: f.limio.Addresses, Schedules: f.limio.Schedules,
		}}
	}
	return f
}

func decodeFile(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// patched decodes testdata/base/<base> with the merge patch applied.
func patched(t *testing.T, base string, patch json.RawMessage, out any) {
	t.Helper()
	var doc any
	decodeFile(t, filepath.Join("testdata", "base", base), &doc)
	if len(patch) > 0 {
		var p any
		if err := json.Unmarshal(patch, &p); err != nil {
			t.Fatal(err)
		}
		doc = mergePatch(doc, p)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", base, err)
	}
}

// mergePatch is RFC 7386: objects merge, null deletes, anything else replaces.
func mergePatch(doc, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	d, ok := doc.(map[string]any)
	if !ok {
		d = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(d, k)
			continue
		}
		d[k] = mergePatch(d[k], v)
	}
	return d
}

// golden is what a plan case's .golden file holds.
type golden struct {
	Result  Result        `json:"result"`
	LimioID string        `json:"limio_id"`
	Changes []Change      `json:"changes"`
	Writes  []goldenWrite `json:"writes"`
}

type goldenWrite struct {
	Op       string      `json:"op"` // create | update
	Path     string      `json:"path"`
	ID       string      `json:"id"`
	Object   any         `json:"object,omitempty"`
	Set      []goldenSet `json:"set,omitempty"`
	Remember string      `json:"remember,omitempty"`
}

type goldenSet struct {
	Field string `json:"field"`
	Value any    `json:"value"`
}

func toGolden(cs *Changeset) golden {
	g := golden{Result: cs.Result, LimioID: cs.LimioID, Changes: cs.Changes}
	for _, w := range cs.writes {
		gw := goldenWrite{Op: OpUpdate, Path: w.path, ID: w.id, Object: w.create, Remember: w.remember}
		if w.create != nil {
			gw.Op = OpCreate
		}
		for _, s := range w.sets {
			gw.Set = append(gw.Set, goldenSet{s.field, s.value})
		}
		g.Writes = append(g.Writes, gw)
	}
	return g
}

func checkGolden(t *testing.T, name string, got golden) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", "plan", name+".golden")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("plan %s differs from %s (go test -update rewrites it)\ngot:\n%s", name, path, b)
	}
}

func TestPlanGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give        string
		want        Result
		wantChanges int // -1: don't check the count (the golden file does)
	}{
		{"in_sync", Unchanged, 0},
		{"evergreen", Updated, -1},
		{"cancelled_mid_term", Updated, -1},
		{"renewal", Updated, -1},
		{"price_change", Updated, 2},
		{"quantity_change", Updated, 3},
		{"charge_removed", Updated, 3},
		{"discount", Updated, 3},
		{"discount_entries_left", Updated, 6},
		{"amount_rounded", Unchanged, 0},
		{"quarterly_annual", Updated, -1},
		{"personal_email", Updated, 2},
		{"sold_to_missing", Created, -1},
		{"address_removed", Unchanged, 0},
		{"contact_edited", Updated, -1},
		{"currency_gbp", Unchanged, 0},
		{"currency_eur_fallback", Updated, 3},
		{"currency_jpy", Created, -1},
		{"version_bump", Updated, 2},
		{"limio_other_status", Updated, -1},
		{"limio_unknown", Created, -1},
		{"expired", Updated, -1},
		{"suspended", Updated, 4},
		{"pending_activation", Updated, 1},
		{"offers_mapped", Updated, 1},
		{"cancelled_entry_back", Updated, 1},
		{"billed_today", Updated, 1},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			f := loadCase(t, tt.give)
			cs, err := Plan(f.cfg, f.z, f.l, f.now)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			if cs.Result != tt.want {
				t.Errorf("Result = %s; want %s", cs.Result, tt.want)
			}
			if tt.wantChanges >= 0 && len(cs.Changes) != tt.wantChanges {
				t.Errorf("len(Changes) = %d; want %d: %v", len(cs.Changes), tt.wantChanges, cs.Changes)
			}
			checkGolden(t, tt.give, toGolden(cs))
			checkConverges(t, f, cs)
		})
	}
}

// checkConverges applies cs to a fake Limio seeded with the case and plans
// again: the second plan must change nothing.
func checkConverges(t *testing.T, f fixture, cs *Changeset) {
	t.Helper()
	l := newFakeLimio()
	f.seedLimio(t, l)
	s := New(f.cfg, newFakeZuora(), l, zaptest.NewLogger(t))
	if err := s.apply(t.Context(), cs); err != nil {
		t.Fatalf("apply: %v", err)
	}
	sub, err := l.GetSubscription(t.Context(), cs.LimioID)
	if err != nil {
		t.Fatalf("after apply: %v", err)
	}
	rel, err := l.GetRelated(t.Context(), cs.LimioID)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Plan(f.cfg, f.z, LimioState{Subscription: sub, Related: *rel}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if again.Result != Unchanged || len(again.writes) != 0 {
		t.Errorf("plan after apply = %s %v; want unchanged", again.Result, again.Changes)
	}
	refs := map[string]bool{}
	for _, e := range rel.Schedules {
		if refs[e.Data.Reference] {
			t.Errorf("duplicate schedule entry %s", e.Data.Reference)
		}
		refs[e.Data.Reference] = true
	}
}

func (f fixture) seedLimio(t *testing.T, l *fakeLimio) {
	t.Helper()
	if f.limio.Subscription == nil {
		return
	}
	l.seed(t, limio.PathSubscriptions, f.limio.Subscription)
	if f.limio.Customer != nil {
		l.seed(t, limio.PathCustomers, f.limio.Customer)
	}
	for _, a := range f.limio.Addresses {
		l.seed(t, limio.PathAddress, a)
	}
	for _, e := range f.limio.Schedules {
		l.seed(t, limio.PathSchedules, e)
	}
}

func TestPlanRejects(t *testing.T) {
	t.Parallel()
	f := loadCase(t, "in_sync")
	other := *f.l.Subscription
	other.Data.Zuora = &limio.ZuoraRef{SubscriptionNumber: "A-S00000999"}
	tests := []struct {
		give string
		z    ZuoraState
		l    LimioState
	}{
		{"no zuora subscription", ZuoraState{}, f.l},
		{"zuora subscription without number", ZuoraState{Subscription: &zuora.Subscription{ID: "x"}}, f.l},
		{"limio mirrors another subscription", f.z, LimioState{Subscription: &other}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			_, err := Plan(f.cfg, tt.z, tt.l, f.now)
			if err == nil || !IsPermanent(err) {
				t.Errorf("Plan = %v; want a permanent error", err)
			}
		})
	}
}

func TestWantStatus(t *testing.T) {
	t.Parallel()
	const today = "2026-11-24"
	tests := []struct {
		give zuora.Subscription
		want string
	}{
		{zuora.Subscription{Status: "Active", TermType: "TERMED", TermEndDate: "2027-03-01"}, limio.StatusActive},
		{zuora.Subscription{Status: "Active", TermType: "TERMED", TermEndDate: "2026-11-23"}, limio.StatusExpired},
		// termEndDate is the first day outside the term (the next term's start).
		{zuora.Subscription{Status: "Active", TermType: "TERMED", TermEndDate: "2026-11-24"}, limio.StatusExpired},
		{zuora.Subscription{Status: "Active", TermType: "TERMED", TermEndDate: "2026-11-25"}, limio.StatusActive},
		{zuora.Subscription{Status: "Active", TermType: "TERMED", TermEndDate: "2026-11-23", AutoRenew: true}, limio.StatusActive},
		{zuora.Subscription{Status: "Active", TermType: "EVERGREEN"}, limio.StatusActive},
		{zuora.Subscription{Status: "Active", TermType: "TERMED", TermEndDate: "2027-03-01", AutoRenew: true,
			StatusHistory: []zuora.StatusHistory{{StartDate: "2025-01-01", EndDate: "2026-11-01", Status: "Active"}, {StartDate: "2026-11-01", Status: "OutOfTerm"}}}, limio.StatusExpired},
		{zuora.Subscription{Status: "Active", StatusHistory: []zuora.StatusHistory{{StartDate: "2026-01-01", EndDate: "2026-02-01", Status: "OutOfTerm"}}}, limio.StatusActive},
		{zuora.Subscription{Status: "Cancelled"}, limio.StatusCancelled},
		{zuora.Subscription{Status: "Suspended"}, limio.StatusSuspended},
		{zuora.Subscription{Status: "Expired"}, limio.StatusExpired},
		{zuora.Subscription{Status: "Draft"}, limio.StatusPending},
		{zuora.Subscription{Status: "Pending Activation"}, limio.StatusPending},
		{zuora.Subscription{Status: "Pending Acceptance"}, limio.StatusPending},
		{zuora.Subscription{Status: "Something New"}, ""},
	}
	for _, tt := range tests {
		if got := wantStatus(&tt.give, today); got != tt.want {
			t.Errorf("wantStatus(%s, end %s, history %v) = %q; want %q", tt.give.Status, tt.give.TermEndDate, tt.give.StatusHistory, got, tt.want)
		}
	}
}

func TestAmounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give     string
		currency string
		want     string
	}{
		{"20", "USD", "20.00"},
		{"20.5", "GBP", "20.50"},
		{"-2", "EUR", "-2.00"},
		{"0.333", "USD", "0.33"}, // the currency's scale
		{"0.125", "USD", "0.13"}, // half away from zero (Zuora's "Round Half Up")
		{"-0.125", "USD", "-0.13"},
		{"2000", "JPY", "2000"},
		{"2000.00", "jpy", "2000"},
		{"2000.5", "JPY", "2001"},
		{"1.5", "KWD", "1.500"},
		{"1.2345", "KWD", "1.235"},
		{"19.999", "EUR", "20.00"},
	}
	for _, tt := range tests {
		d := decimal.RequireFromString(tt.give)
		if got := formatAmount(d, tt.currency); got != tt.want {
			t.Errorf("formatAmount(%s, %s) = %s; want %s", tt.give, tt.currency, got, tt.want)
		}
		if !sameAmount(tt.want, roundAmount(d, tt.currency)) {
			t.Errorf("sameAmount(%s, %s) = false; want true", tt.want, tt.give)
		}
	}
	for _, give := range []string{"", "abc", "20.01"} {
		if sameAmount(give, decimal.RequireFromString("20")) {
			t.Errorf("sameAmount(%q, 20) = true; want false", give)
		}
	}
}

func TestDay(t *testing.T) {
	t.Parallel()
	for give, want := range map[string]string{
		"2026-11-24": "2026-11-24", "2022-07-09T12:44:38.771Z": "2022-07-09", "2017-01-06 16:38:26": "2017-01-06", "": "",
	} {
		if got := day(give); got != want {
			t.Errorf("day(%q) = %q; want %q", give, got, want)
		}
	}
}

// Changes print as one line each (zsync plan ID).
func TestChangeString(t *testing.T) {
	t.Parallel()
	f := loadCase(t, "version_bump")
	cs, err := Plan(f.cfg, f.z, f.l, f.now)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range cs.Changes {
		lines = append(lines, c.String())
	}
	got := strings.Join(lines, "\n")
	want := `update subscription sub-5c3d1e2f8a8b4c7d9e0f1a2b3c4d5e6f data.zuora.subscriptionId: "8a8082c4814b8e0e01814c1e8f3a0003" → "8a8082c4814b8e0e01814c1e8f3a0004"
update subscription sub-5c3d1e2f8a8b4c7d9e0f1a2b3c4d5e6f data.zuora.version: "3" → "4"`
	if got != want {
		t.Errorf("changes =\n%s\nwant\n%s", got, want)
	}
}
