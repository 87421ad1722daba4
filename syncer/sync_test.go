package syncer

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zsync/zsync/internal/logging"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

// Unit tests of Sync against the in-memory fakes: call counts, idempotence,
// crash-and-rerun. sync_sandbox_test.go drives the real clients and sandboxes.

const number = "A-S00000271"

type bundle struct {
	fx fixture
	z  *fakeZuora
	l  *fakeLimio
	s  *Syncer
}

// setup loads a plan case into the fakes: Zuora as the case says, Limio
// seeded with the case's Limio side (empty when limio_unknown).
func setup(t *testing.T, caseName string) *bundle {
	t.Helper()
	fx := loadCase(t, caseName)
	b := &bundle{fx: fx, z: newFakeZuora(), l: newFakeLimio()}
	b.z.put(fx.z.Subscription, fx.z.Account, fx.z.Preview)
	fx.seedLimio(t, b.l)
	b.s = New(fx.cfg, b.z, b.l, zaptest.NewLogger(t), WithClock(func() time.Time { return fx.now }))
	return b
}

func (b *bundle) writes() int {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	return b.l.writes
}

var manual = Trigger{Source: SourceManual}

func TestSyncCreatesThenUnchanged(t *testing.T) {
	t.Parallel()
	b := setup(t, "limio_unknown")
	out, err := b.s.Sync(t.Context(), number, manual)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if out.Result != Created || out.Subscription != number || out.LimioID != limio.NewID("sub", number) {
		t.Errorf("Sync = %+v; want created %s as %s", out, number, limio.NewID("sub", number))
	}
	if got := b.z.reads(); got != 3 {
		t.Errorf("zuora reads = %d; want 3", got)
	}
	if id := b.l.index[number]; id != out.LimioID {
		t.Errorf("index[%s] = %q; want %q (Remember)", number, id, out.LimioID)
	}
	if len(b.l.timeline) != 1 {
		t.Errorf("timeline events = %d; want 1", len(b.l.timeline))
	}
	first := b.writes()

	out, err = b.s.Sync(t.Context(), number, manual)
	if err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	if out.Result != Unchanged || len(out.Changes) != 0 {
		t.Errorf("second Sync = %s %v; want unchanged", out.Result, out.Changes)
	}
	if got := b.writes() - first; got != 0 {
		t.Errorf("second Sync wrote %d times; want 0", got)
	}
	if got := b.z.reads(); got != 6 {
		t.Errorf("zuora reads after two syncs = %d; want 6", got)
	}
}

func TestSyncResolvesLimioKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want Result
	}{
		{"sub-5c3d1e2f8a8b4c7d9e0f1a2b3c4d5e6f", Updated},
		{"A-S00000271", Updated},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "version_bump")
			out, err := b.s.Sync(t.Context(), tt.give, manual)
			if err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if out.Result != tt.want || out.Subscription != number || out.LimioID != "sub-5c3d1e2f8a8b4c7d9e0f1a2b3c4d5e6f" {
				t.Errorf("Sync(%s) = %+v; want %s of %s", tt.give, out, tt.want, number)
			}
			if b.writes() != 2 { // the subscription, the timeline
				t.Errorf("writes = %d; want 2", b.writes())
			}
		})
	}
}

// A Limio reference that isn't a Zuora-looking number: Limio first, then
// Zuora with the number Limio holds.
func TestSyncByReference(t *testing.T) {
	t.Parallel()
	b := setup(t, "in_sync")
	b.l.objs[limio.PathSubscriptions+"/sub-5c3d1e2f8a8b4c7d9e0f1a2b3c4d5e6f"]["reference"] = "3V053CN9SFIG"
	out, err := b.s.Sync(t.Context(), "3V053CN9SFIG", manual)
	if err != nil || out.Result != Unchanged || out.Subscription != number {
		t.Errorf("Sync = %+v, %v; want unchanged %s", out, err, number)
	}
}

func TestSyncNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give        string
		wantLimioID string
	}{
		{"A-S09999999", ""},
		{"sub-doesnotexist", ""},
		{"NOSUCHREF123", ""},
		{"sub-5c3d1e2f8a8b4c7d9e0f1a2b3c4d5e6f", "sub-5c3d1e2f8a8b4c7d9e0f1a2b3c4d5e6f"}, // Limio knows it, Zuora doesn't
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "in_sync")
			if strings.HasPrefix(tt.give, "sub-5c") {
				b.z = newFakeZuora() // empty
				b.s.zuora = b.z
			}
			out, err := b.s.Sync(t.Context(), tt.give, manual)
			if out.Result != NotFound || out.LimioID != tt.wantLimioID {
				t.Errorf("Sync(%s) = %+v; want not_found (limio id %q)", tt.give, out, tt.wantLimioID)
			}
			if !errors.Is(err, ErrNotFound) || !IsPermanent(err) {
				t.Errorf("Sync(%s) error = %v; want permanent ErrNotFound", tt.give, err)
			}
			if b.writes() != 0 {
				t.Errorf("writes = %d; want 0", b.writes())
			}
		})
	}
}

func TestSyncUpstreamErrors(t *testing.T) {
	t.Parallel()
	unavailable := &upstream.Error{API: "zuora", Op: "x", StatusCode: http.StatusServiceUnavailable, Kind: upstream.Retryable}
	tests := []struct{ give string }{{"subscription"}, {"account"}, {"preview"}}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "renewal")
			b.z.fail = map[string]error{tt.give: unavailable}
			out, err := b.s.Sync(t.Context(), number, manual)
			var ue *upstream.Error
			if !errors.As(err, &ue) || !upstream.IsRetryable(err) || IsPermanent(err) {
				t.Errorf("Sync error = %v; want the retryable upstream error", err)
			}
			if out.Result != "" || b.writes() != 0 {
				t.Errorf("Sync = %+v with %d writes; want no result, no writes", out, b.writes())
			}
		})
	}
}

// A crash (an error) after any write, then a re-run, ends in the state one
// clean run leaves, with no duplicate schedule entries; a third run changes
// nothing.
func TestSyncCrashAfterEachWrite(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"limio_unknown", "renewal", "charge_removed", "contact_edited"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clean := setup(t, name)
			if _, err := clean.s.Sync(t.Context(), number, manual); err != nil {
				t.Fatal(err)
			}
			want, total := clean.l.snapshot(t), clean.writes()
			if total < 2 {
				t.Fatalf("clean run wrote %d times; the case should need writes", total)
			}
			for k := 1; k <= total; k++ {
				b := setup(t, name)
				b.l.indexOnly = true // exercise the fallback to the deterministic id
				if sub := b.fx.limio.Subscription; sub != nil {
					b.l.index[number] = sub.ID
				}
				b.l.failAt = k
				_, err := b.s.Sync(t.Context(), number, manual)
				if err == nil && k < total { // only the timeline (last) may fail silently
					t.Errorf("fault at write %d: Sync succeeded", k)
				}
				b.l.failAt = 0
				if _, err := b.s.Sync(t.Context(), number, manual); err != nil {
					t.Fatalf("fault at write %d: re-run: %v", k, err)
				}
				if got := b.l.snapshot(t); got != want {
					t.Errorf("fault at write %d: final state differs from a clean run:\n%s\nwant\n%s", k, got, want)
				}
				before := b.writes()
				out, err := b.s.Sync(t.Context(), number, manual)
				if err != nil || out.Result != Unchanged || b.writes() != before {
					t.Errorf("fault at write %d: third run = %s, %v, %d writes; want unchanged, none", k, out.Result, err, b.writes()-before)
				}
				if id := b.l.index[number]; id != "" && id != limio.NewID("sub", number) && name == "limio_unknown" {
					t.Errorf("index = %q", id)
				}
				rel, err := b.l.GetRelated(t.Context(), out.LimioID)
				if err != nil {
					t.Fatal(err)
				}
				seen := map[string]bool{}
				for _, e := range rel.Schedules {
					if seen[e.Data.Reference] {
						t.Errorf("fault at write %d: duplicate schedule %s", k, e.Data.Reference)
					}
					seen[e.Data.Reference] = true
				}
			}
		})
	}
}

// A crash between creating the subscription and Remember: the re-run finds
// it at its deterministic id and repairs the index.
func TestSyncRepairsIndex(t *testing.T) {
	t.Parallel()
	b := setup(t, "limio_unknown")
	b.l.indexOnly = true
	b.l.failAt = 3 // customer, subscription, remember
	if _, err := b.s.Sync(t.Context(), number, manual); err == nil {
		t.Fatal("Sync with a failing Remember succeeded")
	}
	if b.l.index[number] != "" {
		t.Fatalf("index set despite the fault")
	}
	b.l.failAt = 0
	out, err := b.s.Sync(t.Context(), number, manual)
	if err != nil || out.Result != Updated { // the addresses and schedule still to create
		t.Fatalf("re-run = %+v, %v; want updated", out, err)
	}
	if got := b.l.index[number]; got != limio.NewID("sub", number) {
		t.Errorf("index[%s] = %q; want %q", number, got, limio.NewID("sub", number))
	}
}

func TestSyncPreviewRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give      string
		want      zuora.BillingPreviewRequest
		wantReads int
	}{
		{"in_sync", zuora.BillingPreviewRequest{AccountNumber: "A00000101", TargetDate: "2027-03-01"}, 3},
		{"evergreen", zuora.BillingPreviewRequest{AccountNumber: "A00000101", TargetDate: "2027-11-24", IncludingEvergreenSubscription: true}, 3},
		{"expired", zuora.BillingPreviewRequest{}, 2}, // term end already past: no preview
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.give)
			if _, err := b.s.Sync(t.Context(), number, manual); err != nil {
				t.Fatal(err)
			}
			if got := b.z.reads(); got != tt.wantReads {
				t.Errorf("zuora reads = %d; want %d", got, tt.wantReads)
			}
			var got zuora.BillingPreviewRequest
			if len(b.z.requests) > 0 {
				got = b.z.requests[0]
			}
			if got != tt.want {
				t.Errorf("billing preview request = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestDryRunNeverWrites(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"limio_unknown", "renewal"} {
		b := setup(t, name)
		out, err := b.s.DryRun(t.Context(), number)
		if err != nil {
			t.Fatal(err)
		}
		if out.Result == Unchanged || len(out.Changes) == 0 {
			t.Errorf("DryRun(%s) = %s with %d changes; want the changes a sync would make", name, out.Result, len(out.Changes))
		}
		if b.writes() != 0 {
			t.Errorf("DryRun(%s) wrote %d times", name, b.writes())
		}
	}
}

func TestSyncLoopGuard(t *testing.T) {
	t.Parallel()
	orders := map[string]*zuora.Order{
		"O-LIMIO": {OrderNumber: "O-LIMIO", CreatedBy: "2c92a0fd55822b4d015590a3d9e06e55"},
		"O-SHOP":  {OrderNumber: "O-SHOP", CreatedBy: "someone", CustomFields: zuora.CustomFields{"InitiatedSource__c": []byte(`"Salesforce"`)}},
		"O-CSR":   {OrderNumber: "O-CSR", CreatedBy: "someone", CustomFields: zuora.CustomFields{"Source__c": []byte(`"csr"`)}},
	}
	tests := []struct {
		give       Trigger
		want       Result
		wantOrders int
	}{
		{Trigger{Source: SourceCallout, OrderSource: "shop"}, Skipped, 0},
		{Trigger{Source: SourceCallout, InitiatedSource: "SALESFORCE", OrderNumber: "O-CSR"}, Skipped, 0},
		{Trigger{Source: SourceCallout, CreatedByID: "2c92a0fd55822b4d015590a3d9e06e55"}, Skipped, 0},
		{Trigger{Source: SourceCallout, OrderNumber: "O-LIMIO"}, Skipped, 1},
		{Trigger{Source: SourceCallout, OrderNumber: "O-SHOP"}, Skipped, 1},
		{Trigger{Source: SourceCallout, OrderNumber: "O-CSR"}, Updated, 1},
		{Trigger{Source: SourceCallout, OrderNumber: "O-MISSING"}, Updated, 1},
		{Trigger{Source: SourceCallout, OrderNumber: "O-LIMIO", CreatedByID: "csr-user"}, Updated, 0},
		{Trigger{Source: SourceManual, OrderSource: "shop", CreatedByID: "2c92a0fd55822b4d015590a3d9e06e55"}, Updated, 0},
		{Trigger{Source: SourceSweep, OrderNumber: "O-LIMIO"}, Updated, 0},
	}
	for _, tt := range tests {
		t.Run(tt.give.Source+"/"+tt.give.OrderNumber+tt.give.OrderSource+tt.give.InitiatedSource+tt.give.CreatedByID, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "version_bump")
			b.s.cfg.IntegrationUserIDs = []string{"2c92a0fd55822b4d015590a3d9e06e55"}
			b.z.orders = orders
			out, err := b.s.Sync(t.Context(), number, tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if out.Result != tt.want {
				t.Errorf("Sync(%+v) = %s (%s); want %s", tt.give, out.Result, out.Reason, tt.want)
			}
			if got := b.z.calls["order"]; got != tt.wantOrders {
				t.Errorf("order reads = %d; want %d", got, tt.wantOrders)
			}
			if tt.want == Skipped && (b.z.reads() != 0 || b.writes() != 0 || out.Reason == "") {
				t.Errorf("skipped sync read Zuora %d times, wrote %d times, reason %q", b.z.reads(), b.writes(), out.Reason)
			}
		})
	}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	cfg := Config{IntegrationUserIDs: []string{"limio-user"}}
	withSources := Config{LoopSources: []string{"partner"}}
	tests := []struct {
		name  string
		cfg   Config
		give  Trigger
		order *zuora.Order
		want  bool
	}{
		{"shop", cfg, Trigger{Source: SourceCallout, OrderSource: "shop"}, nil, true},
		{"Shop any case", cfg, Trigger{Source: SourceCallout, OrderSource: " Shop "}, nil, true},
		{"salesforce initiated", cfg, Trigger{Source: SourceCallout, InitiatedSource: "salesforce"}, nil, true},
		{"integration user", cfg, Trigger{Source: SourceCallout, CreatedByID: "LIMIO-USER"}, nil, true},
		{"other user", cfg, Trigger{Source: SourceCallout, CreatedByID: "csr"}, nil, false},
		{"other source", cfg, Trigger{Source: SourceCallout, OrderSource: "csr"}, nil, false},
		{"order by integration user", cfg, Trigger{Source: SourceCallout, OrderNumber: "O-1"}, &zuora.Order{CreatedBy: "limio-user"}, true},
		{"order source", cfg, Trigger{Source: SourceCallout, OrderNumber: "O-1"},
			&zuora.Order{CustomFields: zuora.CustomFields{"source__c": []byte(`"shop"`)}}, true},
		{"order from elsewhere", cfg, Trigger{Source: SourceCallout, OrderNumber: "O-1"},
			&zuora.Order{CreatedBy: "csr", CustomFields: zuora.CustomFields{"Source__c": []byte(`"billing-ops"`)}}, false},
		{"configured sources replace the defaults", withSources, Trigger{Source: SourceCallout, OrderSource: "shop"}, nil, false},
		{"configured source", withSources, Trigger{Source: SourceCallout, OrderSource: "Partner"}, nil, true},
		{"sources set to none", Config{LoopSources: []string{}}, Trigger{Source: SourceCallout, OrderSource: "shop"}, nil, false},
		{"no integration user configured", Config{}, Trigger{Source: SourceCallout, CreatedByID: ""}, &zuora.Order{}, false},
		{"manual never", cfg, Trigger{Source: SourceManual, OrderSource: "shop", CreatedByID: "limio-user"}, nil, false},
		{"bulk never", cfg, Trigger{Source: SourceBulk, OrderSource: "shop"}, &zuora.Order{CreatedBy: "limio-user"}, false},
		{"sweep never", cfg, Trigger{Source: SourceSweep, InitiatedSource: "salesforce"}, nil, false},
	}
	for _, tt := range tests {
		skip, reason := loopGuard(tt.cfg, tt.give, tt.order)
		if skip != tt.want || skip != (reason != "") {
			t.Errorf("%s: loopGuard = %v, %q; want %v", tt.name, skip, reason, tt.want)
		}
	}
}

// Canonical names a subscription by its Zuora number whatever id it is asked
// with, so the worker's lock is one per subscription.
func TestCanonical(t *testing.T) {
	t.Parallel()
	b := setup(t, "in_sync")
	b.l.objs[limio.PathSubscriptions+"/sub-5c3d1e2f8a8b4c7d9e0f1a2b3c4d5e6f"]["reference"] = "3V053CN9SFIG"
	tests := []struct {
		give, want string
	}{
		{number, number},
		{"sub-5c3d1e2f8a8b4c7d9e0f1a2b3c4d5e6f", number},
		{"3V053CN9SFIG", number},
		{"sub-unknown0000", "sub-unknown0000"}, // unknown to Limio: its own name
	}
	for _, tt := range tests {
		got, err := b.s.Canonical(t.Context(), tt.give)
		if err != nil || got != tt.want {
			t.Errorf("Canonical(%s) = %q, %v; want %q", tt.give, got, err, tt.want)
		}
	}
	if n := b.l.calls["resolve"]; n != 3 {
		t.Errorf("Limio resolves = %d; want 3 (none for a Zuora number)", n)
	}
}

// A subscription whose account Zuora can't find is bad data, not a missing
// subscription: a permanent failure, never a not_found outcome.
func TestSyncAccountMissing(t *testing.T) {
	t.Parallel()
	b := setup(t, "in_sync")
	b.z.fail = map[string]error{"account": notFound("zuora", "GET /v1/accounts/{key}")}
	out, err := b.s.Sync(t.Context(), number, manual)
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, upstream.ErrNotFound) || !IsPermanent(err) {
		t.Fatalf("Sync error = %v; want permanent, not a not-found", err)
	}
	if out.Result == NotFound || b.writes() != 0 {
		t.Fatalf("Sync = %+v with %d writes; want no not_found result, no writes", out, b.writes())
	}
}

// A sync logs through the logger its context carries (the worker's task
// logger, with the task id), so its lines can be tied to the task.
func TestSyncLogsThroughTheTaskLogger(t *testing.T) {
	t.Parallel()
	b := setup(t, "limio_unknown")
	core, logs := observer.New(zapcore.DebugLevel)
	ctx := logging.IntoContext(t.Context(), zap.New(core).With(zap.String("task_id", "A-S1:0")))
	if _, err := b.s.Sync(ctx, number, manual); err != nil {
		t.Fatal(err)
	}
	synced := logs.FilterMessage("synced").All()
	if len(synced) != 1 || synced[0].LoggerName != "syncer" || synced[0].ContextMap()["task_id"] != "A-S1:0" {
		t.Fatalf("synced lines through the task logger: %+v; want one, named syncer, with the task id", synced)
	}
}
