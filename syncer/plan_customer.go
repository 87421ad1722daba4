package syncer

import (
	"strings"

	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

// customer reconciles the customer from the bill-to contact (rule 4) and
// returns its id. cusID is the subscription's customer; "" when creating, then
// a customer Limio already returned is reused, else one is created with an id
// derived from the Zuora account number.
func (p *planner) customer(cusID string) string {
	want, ok := wantCustomer(p.z.Account)
	existing := p.l.Related.Customer
	if cusID == "" && existing != nil {
		cusID = existing.ID
	}
	if existing != nil && existing.ID != cusID {
		existing = nil // not this subscription's customer: old values unknown
	}
	if cusID == "" {
		if p.l.Subscription != nil {
			return "" // a Limio subscription without a customer: not ours to invent
		}
		return p.createCustomer()
	}
	if !ok || existing == nil {
		// No bill-to contact, or Limio didn't return the customer with the
		// related objects: nothing to compare, so nothing written (writing
		// blind would rewrite it on every sync).
		return cusID
	}
	p.updateCustomer(existing, want)
	return cusID
}

// OwnerTransferred reports whether the Zuora subscription now belongs to
// another account than the one the Limio subscription recorded (an Owner
// Transfer order action).
func OwnerTransferred(ls *limio.Subscription, zs *zuora.Subscription) bool {
	if ls == nil || ls.Data.Zuora == nil || ls.Data.Zuora.AccountNumber == "" || zs.AccountNumber == "" {
		return false
	}
	return !strings.EqualFold(ls.Data.Zuora.AccountNumber, zs.AccountNumber)
}

// transferCustomer re-links a subscription whose account changed in Zuora to
// the Limio customer of its new account: that customer is brought in line
// (or created, as for a new subscription), and the old customer is left as
// it was, since other subscriptions may still belong to it.
func (p *planner) transferCustomer() string {
	existing := p.l.AccountCustomer
	if existing == nil {
		return p.createCustomer()
	}
	if want, ok := wantCustomer(p.z.Account); ok {
		p.updateCustomer(existing, want)
	}
	return existing.ID
}

// createCustomer creates the customer of the subscription's Zuora account
// under an id derived from the account number (so every subscription of the
// account, and a re-run after a crash, addresses the same one), from the
// bill-to contact or, without one, the account's name.
func (p *planner) createCustomer() string {
	cusID := limio.NewID("cus", p.accountNumber())
	want, ok := wantCustomer(p.z.Account)
	if !ok && p.z.Account != nil {
		want = limio.CustomerData{Name: p.z.Account.BasicInfo.Name}
	}
	d := newDiff(limio.RecordCustomer, limio.PathCustomers, cusID)
	d.created(limio.Customer{
		Envelope: limio.Envelope{ID: cusID, RecordType: limio.RecordCustomer, Reference: p.accountNumber()},
		Data:     want,
	}, customerFields(want))
	p.emit(d)
	return cusID
}

// updateCustomer writes the fields of want that differ from existing. Empty
// Zuora values never erase a Limio name or email (a login may hang on it).
func (p *planner) updateCustomer(existing *limio.Customer, want limio.CustomerData) {
	d := newDiff(limio.RecordCustomer, limio.PathCustomers, existing.ID)
	old := customerFields(existing.Data)
	for i, f := range customerFields(want) {
		if f.value != "" {
			d.text(f.field, old[i].value, f.value)
		}
	}
	p.emit(d)
}

func (p *planner) accountNumber() string {
	if p.zs.AccountNumber != "" {
		return p.zs.AccountNumber
	}
	if p.z.Account != nil {
		return p.z.Account.BasicInfo.AccountNumber
	}
	return p.zs.AccountID
}

func wantCustomer(acc *zuora.Account) (limio.CustomerData, bool) {
	if acc == nil || acc.BillToContact == nil {
		return limio.CustomerData{}, false
	}
	c := acc.BillToContact
	return limio.CustomerData{
		FirstName: c.FirstName,
		LastName:  c.LastName,
		Name:      strings.TrimSpace(c.FirstName + " " + c.LastName),
		Email:     c.Email(),
	}, true
}

func customerFields(c limio.CustomerData) []fv {
	return []fv{
		{limio.FieldFirstName, c.FirstName}, {limio.FieldLastName, c.LastName}, {limio.FieldName, c.Name}, {limio.FieldEmail, c.Email},
	}
}
