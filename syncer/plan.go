package syncer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

const dateLayout = "2006-01-02"

// Envelope fields a created subscription sets, named in its changes (the
// field paths of updates are limio.Field*, the one mapping zsync keeps).
const (
	fReference = "reference"
	fCustomer  = "customer"
)

// ZuoraState is what a sync reads from Zuora: the subscription (latest
// version), its account (contacts, currency) and the account's billing preview
// up to the term end (invoice and credit memo items). Preview and Credits may
// hold other subscriptions' items: Plan keeps this subscription's.
type ZuoraState struct {
	Subscription *zuora.Subscription
	Account      *zuora.Account
	Preview      []zuora.InvoiceItem
	Credits      []zuora.CreditMemoItem // with Invoice Settlement
	// InvoiceOwner is the account that pays when it is not the
	// subscription's own (nil otherwise): its bill-to is the billing address.
	InvoiceOwner *zuora.Account
}

// LimioState is what a sync reads from Limio. Subscription is nil when Limio
// doesn't know the Zuora subscription yet; Related then may still hold a
// customer to reuse.
type LimioState struct {
	Subscription *limio.Subscription
	Related      limio.Related
	// AccountCustomer is the Limio customer zsync keeps for the Zuora
	// account the subscription now belongs to, read only after an owner
	// transfer (the subscription's account differs from the one Limio
	// recorded); nil when there is none yet.
	AccountCustomer *limio.Customer
}

// Changeset is a plan: the printable changes, and the writes that make them,
// grouped per object in the order Apply sends them (customer, subscription,
// addresses, schedule entries).
type Changeset struct {
	Subscription string   // the Zuora subscription number
	LimioID      string   // sub-… (deterministic when Result is Created)
	Result       Result   // Created, Updated or Unchanged
	Changes      []Change // in write order
	writes       []write
	remember     string // a Zuora number Limio's index lacks (set by Syncer)
}

// write is one Limio object's create (a full object) or partial update.
type write struct {
	object string // limio.Record*
	path   string // Limio path type
	id     string
	create any   // the full object when creating, else nil
	sets   []set // the fields of a partial update
	// remember is set on the subscription's create: the Zuora number Limio's
	// index must map to the new id, so later syncs find it.
	remember string
}

type set struct {
	field string
	value any
}

// Plan decides what a sync changes in Limio so that it mirrors Zuora
// (docs/design.md "Reconciliation rules" 1–7 and 9). It is pure: no I/O, and now
// is the only clock. Dates are compared as YYYY-MM-DD in now's location.
func Plan(cfg Config, z ZuoraState, l LimioState, now time.Time) (*Changeset, error) {
	cfg = cfg.withDefaults()
	zs := z.Subscription
	if zs == nil || zs.SubscriptionNumber == "" {
		return nil, Permanent(errors.New("plan: zuora subscription without a number"))
	}
	if ls := l.Subscription; ls != nil && ls.Data.Zuora != nil && ls.Data.Zuora.SubscriptionNumber != "" &&
		!strings.EqualFold(ls.Data.Zuora.SubscriptionNumber, zs.SubscriptionNumber) {
		return nil, Permanent(fmt.Errorf("plan: limio %s mirrors zuora %s, not %s",
			ls.ID, ls.Data.Zuora.SubscriptionNumber, zs.SubscriptionNumber))
	}
	p := &planner{cfg: cfg, z: z, l: l, zs: zs, today: now.Format(dateLayout)}
	p.currency = zs.Currency
	if p.currency == "" && z.Account != nil {
		p.currency = z.Account.BillingAndPayment.Currency
	}
	p.cs = &Changeset{Subscription: zs.SubscriptionNumber}
	if l.Subscription == nil {
		p.subID = limio.NewID("sub", zs.SubscriptionNumber)
		cusID := p.customer("")
		p.createSubscription(cusID)
		p.cs.Result = Created
	} else {
		p.subID = l.Subscription.ID
		p.owner = l.Subscription.Owner
		cusID := l.Subscription.Customer
		if OwnerTransferred(l.Subscription, zs) {
			cusID = p.transferCustomer()
		} else {
			p.customer(cusID)
		}
		p.updateSubscription(cusID)
	}
	p.cs.LimioID = p.subID
	if z.Account != nil {
		// The customer, the delivery address and (unless another account
		// pays) the billing address come from the subscription's own
		// account; the billing address is the payer's bill-to.
		billTo := z.Account.BillToContact
		if z.InvoiceOwner != nil && z.InvoiceOwner.BillToContact != nil {
			billTo = z.InvoiceOwner.BillToContact
		}
		p.address(limio.AddressBilling, billTo)
		p.address(limio.AddressDelivery, z.Account.SoldToContact)
	}
	p.schedule()
	if p.cs.Result == "" {
		p.cs.Result = Unchanged
		if len(p.cs.writes) > 0 {
			p.cs.Result = Updated
		}
	}
	return p.cs, nil
}

type planner struct {
	cfg      Config
	z        ZuoraState
	l        LimioState
	zs       *zuora.Subscription
	today    string
	currency string
	subID    string
	owner    string
	cs       *Changeset
}

// diff collects one object's write and its changes.
type diff struct {
	w       write
	changes []Change
}

func newDiff(object, path, id string) *diff {
	return &diff{w: write{object: object, path: path, id: id}}
}

// set records a field update (op is OpUpdate or OpCancel).
func (d *diff) set(op, field, was, now string, value any) {
	d.w.sets = append(d.w.sets, set{field, value})
	d.changes = append(d.changes, Change{Object: d.w.object, ID: d.w.id, Op: op, Field: field, Old: was, New: now})
}

// text updates a text field when it differs.
func (d *diff) text(field, was, now string) {
	if was != now {
		d.set(OpUpdate, field, was, now, now)
	}
}

// created records a create: the full object and one change per set field.
func (d *diff) created(obj any, fields []fv) {
	d.w.create = obj
	for _, f := range fields {
		if f.value != "" {
			d.changes = append(d.changes, Change{Object: d.w.object, ID: d.w.id, Op: OpCreate, Field: f.field, New: f.value})
		}
	}
}

type fv struct{ field, value string }

func (p *planner) emit(d *diff) {
	if d.w.create == nil && len(d.w.sets) == 0 {
		return
	}
	p.cs.writes = append(p.cs.writes, d.w)
	p.cs.Changes = append(p.cs.Changes, d.changes...)
}

// day is the YYYY-MM-DD part of a date or timestamp (Limio's own schedule
// entries carry "2022-07-09T12:44:38.771Z").
func day(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 10 && (s[10] == 'T' || s[10] == ' ') {
		return s[:10]
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
