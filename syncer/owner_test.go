package syncer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

// TestOwnerTransferRelinksTheCustomer: the subscription moves to another
// Zuora account (an Owner Transfer). Sync re-links the Limio subscription to
// the new account's customer, created from its bill-to contact the first
// time and brought in line when it exists, and leaves the old customer's
// name and e-mail as they were: other subscriptions may still be its.
func TestOwnerTransferRelinksTheCustomer(t *testing.T) {
	t.Parallel()
	for _, existing := range []bool{false, true} {
		b := setup(t, "limio_unknown")
		ctx := t.Context()
		if _, err := b.s.Sync(ctx, number, manual); err != nil {
			t.Fatal(err)
		}
		oldAccount := b.fx.z.Subscription.AccountNumber
		oldCus := limio.NewID("cus", oldAccount)
		var before limio.Customer
		if err := b.l.get(limio.PathCustomers, oldCus, &before); err != nil {
			t.Fatalf("old customer: %v", err)
		}

		// Transfer to A00000999, whose bill-to is Grace.
		sub := *b.fx.z.Subscription
		sub.AccountNumber, sub.AccountID = "A00000999", "8a8aa0c19a4f0999000000000000acc9"
		acc := *b.fx.z.Account
		acc.BasicInfo.AccountNumber, acc.BasicInfo.ID = sub.AccountNumber, sub.AccountID
		acc.BillToContact = &zuora.Contact{FirstName: "Grace", LastName: "Hopper", WorkEmail: "grace@example.com"}
		b.z.put(&sub, &acc, b.fx.z.Preview)
		newCus := limio.NewID("cus", "A00000999")
		if existing {
			b.l.seed(t, limio.PathCustomers, limio.Customer{
				Envelope: limio.Envelope{ID: newCus, RecordType: limio.RecordCustomer, Reference: "A00000999"},
				Data:     limio.CustomerData{FirstName: "G", LastName: "Hopper", Name: "G Hopper", Email: "old@example.com"},
			})
		}

		out, err := b.s.Sync(ctx, number, manual)
		if err != nil || out.Result != Updated {
			t.Fatalf("existing=%v: transfer sync = %+v, %v; want updated", existing, out, err)
		}
		var ls limio.Subscription
		if err := b.l.get(limio.PathSubscriptions, out.LimioID, &ls); err != nil {
			t.Fatal(err)
		}
		if ls.Customer != newCus {
			t.Errorf("existing=%v: subscription's customer %q; want the new account's %q", existing, ls.Customer, newCus)
		}
		var got limio.Customer
		if err := b.l.get(limio.PathCustomers, newCus, &got); err != nil {
			t.Fatalf("existing=%v: new customer: %v", existing, err)
		}
		if got.Data.Email != "grace@example.com" || got.Data.Name != "Grace Hopper" {
			t.Errorf("existing=%v: new customer %+v; want Grace's contact", existing, got.Data)
		}
		var after limio.Customer
		if err := b.l.get(limio.PathCustomers, oldCus, &after); err != nil {
			t.Fatal(err)
		}
		if after.Data != before.Data {
			t.Errorf("existing=%v: the old customer changed: %+v → %+v", existing, before.Data, after.Data)
		}
		// Settled: the next sync changes nothing.
		if out, err := b.s.Sync(ctx, number, manual); err != nil || out.Result != Unchanged {
			t.Errorf("existing=%v: after the transfer: %s %v %v; want unchanged", existing, out.Result, out.Changes, err)
		}
	}
}

// TestWhoseContact: the customer and the delivery address come from the
// subscription's own account; the billing address from the bill-to of the
// account that pays, which is another account when an invoice owner is set.
func TestWhoseContact(t *testing.T) {
	t.Parallel()
	for _, paidByAnother := range []bool{false, true} {
		b := setup(t, "limio_unknown")
		own := b.fx.z.Account
		sub := *b.fx.z.Subscription
		if paidByAnother {
			payer := *own
			payer.BasicInfo.AccountNumber, payer.BasicInfo.ID = "A00000998", "8a8aa0c19a4f0998000000000000acc8"
			payer.BillToContact = &zuora.Contact{FirstName: "Pay", LastName: "Er", Address1: "1 Payer Street", WorkEmail: "payer@example.com"}
			sub.InvoiceOwnerAccountNumber = payer.BasicInfo.AccountNumber
			b.z.putAccount(&payer)
			b.z.put(&sub, own, b.fx.z.Preview)
		}
		out, err := b.s.Sync(t.Context(), number, manual)
		if err != nil || out.Result != Created {
			t.Fatalf("paidByAnother=%v: %+v %v", paidByAnother, out, err)
		}
		rel, err := b.l.GetRelated(t.Context(), out.LimioID)
		if err != nil {
			t.Fatal(err)
		}
		byType := map[string]limio.AddressData{}
		for _, a := range rel.Addresses {
			byType[a.Data.Type] = a.Data
		}
		wantBilling := own.BillToContact.Address1
		if paidByAnother {
			wantBilling = "1 Payer Street"
		}
		if got := byType[limio.AddressBilling].Address1; got != wantBilling {
			t.Errorf("paidByAnother=%v: billing address1 %q; want %q", paidByAnother, got, wantBilling)
		}
		if got := byType[limio.AddressDelivery].Address1; got != own.SoldToContact.Address1 {
			t.Errorf("paidByAnother=%v: delivery address1 %q; want the own sold-to's %q", paidByAnother, got, own.SoldToContact.Address1)
		}
		if rel.Customer == nil || rel.Customer.Data.Email != own.BillToContact.Email() {
			t.Errorf("paidByAnother=%v: customer %+v; want the own account's bill-to e-mail %q", paidByAnother, rel.Customer, own.BillToContact.Email())
		}
	}
}

// TestSharedCustomerSyncedAtOnce: three subscriptions of one Zuora account
// are one Limio customer. Synced at once (as by three workers), they create
// it under one id with the bill-to's values; after a bill-to edit, synced
// at once again, the customer holds the new values; a further round writes
// nothing to it (no flapping between contacts, no lost write).
func TestSharedCustomerSyncedAtOnce(t *testing.T) {
	t.Parallel()
	sb := newSandboxes(t, "limio_unknown")
	base := *sb.fx.z.Subscription
	subs := []string{base.SubscriptionNumber}
	for i := range 2 {
		sub := base
		sub.SubscriptionNumber, sub.ID = fmt.Sprintf("A-S0000990%d", i), fmt.Sprintf("8a8aa0c19a4f09900000000000000%03d", i)
		if err := sb.zs.PutSubscription(sub); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub.SubscriptionNumber)
	}
	cusID := limio.NewID("cus", base.AccountNumber)
	cusPath := "/api/objects/limio/" + limio.PathCustomers + "/" + cusID
	atOnce := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(subs))
		for i, n := range subs {
			wg.Go(func() { _, errs[i] = sb.s.Sync(t.Context(), n, manual) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("sync %s: %v", subs[i], err)
			}
		}
	}
	customer := func() limio.Customer {
		t.Helper()
		var c limio.Customer
		raw, ok := sb.ls.Get(limio.PathCustomers, cusID)
		if !ok {
			t.Fatalf("no customer %s", cusID)
		}
		b, _ := json.Marshal(raw)
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	atOnce()
	for _, n := range subs {
		raw, ok := sb.ls.Get(limio.PathSubscriptions, limio.NewID("sub", n))
		if !ok || raw["customer"] != cusID {
			t.Fatalf("%s: customer %v; want the account's %s", n, raw["customer"], cusID)
		}
	}
	if got := customer().Data.Email; got != sb.fx.z.Account.BillToContact.Email() {
		t.Fatalf("customer e-mail %q; want the bill-to's %q", got, sb.fx.z.Account.BillToContact.Email())
	}

	acc := *sb.fx.z.Account
	bill := *acc.BillToContact
	bill.WorkEmail = "shared.new@example.com"
	acc.BillToContact = &bill
	if err := sb.zs.PutAccount(acc); err != nil {
		t.Fatal(err)
	}
	atOnce()
	if got := customer().Data.Email; got != "shared.new@example.com" {
		t.Fatalf("customer e-mail after the edit %q; want the new one", got)
	}
	puts := sb.ls.Count(http.MethodPut, cusPath)
	atOnce()
	if n := sb.ls.Count(http.MethodPut, cusPath) - puts; n != 0 {
		t.Errorf("a settled round wrote the customer %d times; want 0", n)
	}
}
