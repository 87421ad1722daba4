package syncer

import (
	"errors"
	"net/http"
	"testing"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/zuora"
)

// When another account pays for the subscription, Zuora invoices that
// account: the preview must be of the invoice owner, or every future charge
// looks gone and is cancelled.
func TestPreviewOfTheInvoiceOwner(t *testing.T) {
	t.Parallel()
	sb := newSandboxes(t, "in_sync")
	owner := *sb.fx.z.Account
	owner.BasicInfo.AccountNumber, owner.BasicInfo.ID = "A00000999", "8a8082c4814b8e0e01814c1e8d0a0999"
	if err := sb.zs.PutAccount(owner); err != nil {
		t.Fatal(err)
	}
	sub := *sb.fx.z.Subscription
	sub.InvoiceOwnerAccountNumber = "A00000999"
	if err := sb.zs.PutSubscription(sub); err != nil {
		t.Fatal(err)
	}
	out, err := sb.s.Sync(t.Context(), number, manual)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != Unchanged {
		t.Errorf("result = %s with changes %v; want unchanged (the invoice owner's preview has this subscription's charges)", out.Result, out.Changes)
	}
}

// A 404 from the subscription listing (a scan after an index miss) is not
// "Limio doesn't know this subscription": it must fail the sync, not create a
// duplicate and repoint the index at it.
func TestListing404CreatesNoDuplicate(t *testing.T) {
	t.Parallel()
	sb := newSandboxes(t, "in_sync")
	sb.ls.AddFault(sandbox.Fault{Method: http.MethodGet, Path: "/api/objects/limio/subscriptions", Status: http.StatusNotFound, Count: 1})
	out, err := sb.s.Sync(t.Context(), number, manual)
	if err == nil || out.Result == Created || errors.Is(err, ErrNotFound) {
		t.Fatalf("Sync = %s (%s), %v; want a failure that is not not-found", out.Result, out.LimioID, err)
	}
	if ue := (*upstream.Error)(nil); !errors.As(err, &ue) || ue.Kind != upstream.Permanent {
		t.Errorf("a missing listing endpoint is configuration: %v should be permanent", err)
	}
	if id, _, _ := sb.index.Get(t.Context(), number); id != "" && id != sb.fx.limio.Subscription.ID {
		t.Errorf("index now maps %s -> %s", number, id)
	}
	// Once the listing answers, the sync finds the existing subscription.
	out, err = sb.s.Sync(t.Context(), number, manual)
	if err != nil || out.Result != Unchanged || out.LimioID != sb.fx.limio.Subscription.ID {
		t.Fatalf("Sync after = %s %s, %v; want unchanged on %s", out.Result, out.LimioID, err, sb.fx.limio.Subscription.ID)
	}
}

// A Limio write answering 404 fails the sync; it is no verdict that the
// subscription doesn't exist.
func TestWrite404IsNotNotFound(t *testing.T) {
	t.Parallel()
	sb := newSandboxes(t, "renewal")
	sb.ls.AddFault(sandbox.Fault{Method: http.MethodPut, Path: "/api/objects/limio/schedules", Status: http.StatusNotFound})
	_, err := sb.s.Sync(t.Context(), number, manual)
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Sync error %v; want a failure that is not ErrNotFound", err)
	}
	if !errors.Is(err, upstream.ErrNotFound) {
		t.Fatalf("the 404 itself should stay visible in the chain: %v", err)
	}
}

// A charge billed through an earlier segment while its last segment (a price
// change from January) is not billed yet: Zuora's default answer carries only
// the last segment, without a chargedThroughDate. With all segments read,
// December, billed today, is marked billed, not cancelled.
func TestBilledThroughAnEarlierSegment(t *testing.T) {
	t.Parallel()
	plan := func(segments []zuora.ChargeSegment) *Changeset {
		f := loadCase(t, "billed_today")
		zs := *f.z.Subscription
		rp := zs.RatePlans[0]
		c := rp.RatePlanCharges[0]
		c.Segment, c.EffectiveStartDate, c.ChargedThroughDate, c.Price = 2, "2027-01-01", "", zuora.NewAmount("24.99")
		c.ChargeSegments = segments
		rp.RatePlanCharges = []zuora.Charge{c}
		zs.RatePlans = []zuora.RatePlan{rp}
		f.z.Subscription = &zs
		for i := range f.z.Preview {
			f.z.Preview[i].ChargeAmount = zuora.NewAmount("24.99")
		}
		cs, err := Plan(f.cfg, f.z, f.l, f.now)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	december := func(cs *Changeset) (op string, found bool) {
		for _, c := range cs.Changes {
			if c.ID == "schedule-dec" && c.Field == "status" {
				return c.Op, true
			}
		}
		return "", false
	}
	// Only the last segment known: December looks unbilled (the defect the
	// segments fix; kept so this test can tell).
	if op, _ := december(plan(nil)); op != OpCancel {
		t.Fatalf("without segments December is %q; this case no longer shows the problem", op)
	}
	op, found := december(plan([]zuora.ChargeSegment{
		{Segment: 1, EffectiveStartDate: "2025-03-01", EffectiveEndDate: "2027-01-01", ChargedThroughDate: "2027-01-01"},
		{Segment: 2, EffectiveStartDate: "2027-01-01", EffectiveEndDate: "2027-03-01"},
	}))
	if !found || op == OpCancel {
		t.Fatalf("December: %q (found %v); want marked billed (active), not cancelled", op, found)
	}
}
