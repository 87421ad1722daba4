package syncer

import (
	"errors"
	"net/http"
	"testing"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
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
