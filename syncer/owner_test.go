package syncer

import (
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
