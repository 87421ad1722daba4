package syncer

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
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

// createSubscription creates the Limio subscription for a Zuora subscription
// Limio doesn't know (rule 7), marked created by sync.
func (p *planner) createSubscription(cusID string) {
	zs := p.zs
	status := wantStatus(zs, p.today)
	if status == "" {
		status = limio.StatusPending
	}
	autoRenew := bool(zs.AutoRenew)
	ref := wantZuoraRef(zs)
	offers := wantOffers(p.cfg, zs)
	sub := limio.Subscription{
		Envelope: limio.Envelope{
			ID: p.subID, RecordType: limio.RecordSubscription,
			Name: zs.SubscriptionNumber, Reference: zs.SubscriptionNumber,
			Status: status, Customer: cusID,
		},
		Start: day(firstNonEmpty(zs.SubscriptionStartDate, zs.ContractEffectiveDate)),
		Data: limio.SubscriptionData{
			Name:          subscriptionName(zs),
			TermStartDate: day(zs.TermStartDate),
			TermEndDate:   wantTermEnd(zs),
			Attributes:    limio.Attributes{AutoRenew: &autoRenew},
			Zuora:         &ref,
			CreatedBySync: true,
			Offers:        offers,
		},
	}
	fields := []fv{
		{limio.FieldStatus, status}, {fReference, sub.Reference}, {fCustomer, cusID},
		{limio.FieldTermStart, sub.Data.TermStartDate}, {limio.FieldTermEnd, deref(sub.Data.TermEndDate)},
		{limio.FieldAutoRenew, strconv.FormatBool(autoRenew)},
	}
	fields = append(fields, zuoraRefFields(&ref)...)
	fields = append(fields, fv{limio.FieldCreatedBySync, "true"}, fv{limio.FieldOffers, offersText(offers)})
	d := newDiff(limio.RecordSubscription, limio.PathSubscriptions, p.subID)
	d.created(sub, fields)
	d.w.remember = zs.SubscriptionNumber
	p.emit(d)
}

// updateSubscription brings an existing Limio subscription's status, term,
// auto-renew, Zuora reference, offers and (after an owner transfer) customer
// in line (rules 1, 5, 6, 9).
func (p *planner) updateSubscription(cusID string) {
	zs, ls := p.zs, p.l.Subscription
	d := newDiff(limio.RecordSubscription, limio.PathSubscriptions, ls.ID)
	if cusID != "" {
		d.text(fCustomer, ls.Customer, cusID)
	}
	if st := wantStatus(zs, p.today); st != "" {
		d.text(limio.FieldStatus, ls.Status, st)
	}
	d.text(limio.FieldTermStart, day(ls.Data.TermStartDate), day(zs.TermStartDate))
	if end, old := wantTermEnd(zs), ls.Data.TermEndDate; day(deref(old)) != deref(end) {
		var v any // JSON null for an evergreen subscription
		if end != nil {
			v = *end
		}
		d.set(OpUpdate, limio.FieldTermEnd, deref(old), deref(end), v)
	}
	if ar, old := bool(zs.AutoRenew), ls.Data.Attributes.AutoRenew; old == nil || *old != ar {
		oldText := ""
		if old != nil {
			oldText = strconv.FormatBool(*old)
		}
		d.set(OpUpdate, limio.FieldAutoRenew, oldText, strconv.FormatBool(ar), ar)
	}
	// data.zuora is written whole (nested values need their structure); the
	// changes name the parts that moved, e.g. the id and version of a new
	// subscription version.
	if ref := wantZuoraRef(zs); ls.Data.Zuora == nil || *ls.Data.Zuora != ref {
		oldFields, newFields := zuoraRefFields(ls.Data.Zuora), zuoraRefFields(&ref)
		for i := range newFields {
			if oldFields[i].value != newFields[i].value {
				d.changes = append(d.changes, Change{Object: limio.RecordSubscription, ID: ls.ID, Op: OpUpdate,
					Field: newFields[i].field, Old: oldFields[i].value, New: newFields[i].value})
			}
		}
		d.w.sets = append(d.w.sets, set{limio.FieldZuora, ref})
	}
	if want := wantOffers(p.cfg, zs); want != nil && !sameOffers(ls.Data.Offers, want) {
		d.set(OpUpdate, limio.FieldOffers, offersText(ls.Data.Offers), offersText(want), want)
	}
	p.emit(d)
}

// wantStatus maps Zuora's status onto Limio's (rule 6); "" for a status it
// doesn't know, which leaves Limio's alone.
func wantStatus(zs *zuora.Subscription, today string) string {
	switch strings.ToLower(zs.Status) {
	case "active":
		if outOfTerm(zs, today) {
			return limio.StatusExpired
		}
		return limio.StatusActive
	case "cancelled", "canceled":
		return limio.StatusCancelled
	case "suspended":
		return limio.StatusSuspended
	case "expired":
		return limio.StatusExpired
	case "draft", "pending activation", "pending acceptance":
		return limio.StatusPending
	}
	return ""
}

// outOfTerm: a termed subscription that won't renew, on or after its term end
// (Zuora's termEndDate is the first day outside the term, as the schedule
// also reads it), or one whose status history says OutOfTerm today.
func outOfTerm(zs *zuora.Subscription, today string) bool {
	end := day(zs.TermEndDate)
	if strings.EqualFold(zs.TermType, "TERMED") && end != "" && end <= today && !bool(zs.AutoRenew) {
		return true
	}
	for _, h := range zs.StatusHistory {
		start, stop := day(h.StartDate), day(h.EndDate)
		if start <= today && (stop == "" || today < stop) && strings.EqualFold(h.Status, "OutOfTerm") {
			return true
		}
	}
	return false
}

// wantTermEnd is the term end, nil for an evergreen subscription (rule 1).
func wantTermEnd(zs *zuora.Subscription) *string {
	if strings.EqualFold(zs.TermType, "EVERGREEN") || zs.TermEndDate == "" {
		return nil
	}
	s := day(zs.TermEndDate)
	return &s
}

func wantZuoraRef(zs *zuora.Subscription) limio.ZuoraRef {
	return limio.ZuoraRef{
		SubscriptionNumber: zs.SubscriptionNumber,
		SubscriptionID:     zs.ID,
		AccountNumber:      zs.AccountNumber,
		Version:            int(zs.Version),
	}
}

func zuoraRefFields(r *limio.ZuoraRef) []fv {
	if r == nil {
		r = &limio.ZuoraRef{}
	}
	version := ""
	if r.Version != 0 {
		version = strconv.Itoa(r.Version)
	}
	return []fv{
		{limio.FieldZuora + ".subscriptionNumber", r.SubscriptionNumber},
		{limio.FieldZuora + ".subscriptionId", r.SubscriptionID},
		{limio.FieldZuora + ".accountNumber", r.AccountNumber},
		{limio.FieldZuora + ".version", version},
	}
}

// wantOffers maps the subscription's rate plans to Limio offers through
// cfg.Offers (rule 9); nil when none is mapped, which leaves offers alone.
func wantOffers(cfg Config, zs *zuora.Subscription) []limio.OfferRef {
	var out []limio.OfferRef
	seen := map[string]bool{}
	for _, rp := range zs.RatePlans {
		path, ok := cfg.Offers[rp.ProductRatePlanID]
		if !ok || strings.EqualFold(rp.LastChangeType, "Remove") || seen[path] {
			continue
		}
		seen[path] = true
		out = append(out, limio.OfferRef{Path: path, ProductRatePlanID: rp.ProductRatePlanID})
	}
	return out
}

// sameOffers compares offers by path, ignoring order: offers Limio set itself
// carry no productRatePlanId and are not rewritten for that.
func sameOffers(have, want []limio.OfferRef) bool {
	a, b := offerPaths(have), offerPaths(want)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func offerPaths(offers []limio.OfferRef) []string {
	out := make([]string, 0, len(offers))
	for _, o := range offers {
		out = append(out, o.Path)
	}
	sort.Strings(out)
	return out
}

func offersText(offers []limio.OfferRef) string { return strings.Join(offerPaths(offers), ",") }

func subscriptionName(zs *zuora.Subscription) string {
	for _, rp := range zs.RatePlans {
		if !strings.EqualFold(rp.LastChangeType, "Remove") {
			return firstNonEmpty(rp.ProductName, rp.RatePlanName)
		}
	}
	return zs.SubscriptionNumber
}

// address reconciles one address (rule 3): the bill-to contact is the billing
// address, the sold-to contact the delivery address. A contact that is
// missing, or has no address lines at all, leaves the Limio address alone:
// Zuora not sending one is no reason to erase what the customer gave Limio.
func (p *planner) address(typ string, c *zuora.Contact) {
	want, ok := wantAddress(typ, c)
	if !ok {
		return
	}
	var existing *limio.Address
	for i := range p.l.Related.Addresses {
		if strings.EqualFold(p.l.Related.Addresses[i].Data.Type, typ) {
			existing = &p.l.Related.Addresses[i]
			break
		}
	}
	if existing == nil {
		id := limio.NewID("address", p.subID, typ)
		d := newDiff(limio.RecordAddress, limio.PathAddress, id)
		d.created(limio.Address{
			Envelope: limio.Envelope{ID: id, RecordType: limio.RecordAddress, Related: p.subID, Owner: p.owner},
			Data:     want,
		}, addressFields(want))
		p.emit(d)
		return
	}
	d := newDiff(limio.RecordAddress, limio.PathAddress, existing.ID)
	oldF, newF := addressFields(existing.Data), addressFields(want)
	for i := 1; i < len(newF); i++ { // [0] is the type, the address's identity
		d.text(newF[i].field, oldF[i].value, newF[i].value)
	}
	p.emit(d)
}

func wantAddress(typ string, c *zuora.Contact) (limio.AddressData, bool) {
	if c == nil || c.Address1 == "" && c.Address2 == "" && c.City == "" && c.State == "" && c.Zip() == "" && c.Country == "" {
		return limio.AddressData{}, false
	}
	company := c.Company
	if company == "" {
		company = customField(c.CustomFields, "Company__c")
	}
	return limio.AddressData{
		Type: typ, FirstName: c.FirstName, LastName: c.LastName, Company: company,
		Address1: c.Address1, Address2: c.Address2, City: c.City, State: c.State,
		PostalCode: c.Zip(), Country: c.Country, Email: c.Email(),
	}, true
}

func addressFields(a limio.AddressData) []fv {
	return []fv{
		{limio.FieldAddressType, a.Type}, {limio.FieldFirstName, a.FirstName}, {limio.FieldLastName, a.LastName}, {limio.FieldCompany, a.Company},
		{limio.FieldAddress1, a.Address1}, {limio.FieldAddress2, a.Address2}, {limio.FieldCity, a.City}, {limio.FieldState, a.State},
		{limio.FieldPostalCode, a.PostalCode}, {limio.FieldCountry, a.Country}, {limio.FieldEmail, a.Email},
	}
}

// schedule reconciles the schedule (rule 2): create missing entries, update
// changed ones, cancel pending future entries Zuora no longer bills. Past
// entries (date before today) are history and never touched.
func (p *planner) schedule() {
	existing := p.l.Related.Schedules
	// The entry that holds a reference: the one at the deterministic id when
	// there are several (any other is cancelled below if pending).
	byRef := map[string]int{}
	for i, e := range existing {
		ref := e.Data.Reference
		if ref == "" {
			continue
		}
		if j, ok := byRef[ref]; !ok || existing[j].ID != limio.NewID("schedule", p.subID, ref) && e.ID == limio.NewID("schedule", p.subID, ref) {
			byRef[ref] = i
		}
	}
	matched := map[int]bool{}
	for _, c := range p.wantSchedule() {
		amount := formatAmount(c.amount, p.currency)
		i, ok := byRef[c.ref]
		if !ok {
			id := limio.NewID("schedule", p.subID, c.ref)
			data := limio.ScheduleData{Date: c.date, Amount: amount, Currency: p.currency, Description: c.desc, Reference: c.ref, Type: "payment"}
			d := newDiff(limio.RecordSchedule, limio.PathSchedules, id)
			d.created(limio.Schedule{
				Envelope: limio.Envelope{ID: id, RecordType: limio.RecordSchedule, Status: limio.SchedulePending, Related: p.subID, Owner: p.owner},
				Data:     data,
			}, []fv{{limio.FieldReference, c.ref}, {limio.FieldDate, c.date}, {limio.FieldAmount, amount}, {limio.FieldCurrency, p.currency}, {limio.FieldDescription, c.desc}})
			p.emit(d)
			continue
		}
		matched[i] = true
		e := existing[i]
		if day(e.Data.Date) < p.today {
			continue
		}
		d := newDiff(limio.RecordSchedule, limio.PathSchedules, e.ID)
		if strings.EqualFold(e.Status, limio.ScheduleCancelled) {
			d.text(limio.FieldStatus, e.Status, limio.SchedulePending) // billed again
		}
		d.text(limio.FieldDate, day(e.Data.Date), c.date)
		if !sameAmount(e.Data.Amount, c.amount) {
			d.set(OpUpdate, limio.FieldAmount, e.Data.Amount, amount, amount)
		}
		if !strings.EqualFold(e.Data.Currency, p.currency) {
			d.set(OpUpdate, limio.FieldCurrency, e.Data.Currency, p.currency, p.currency)
		}
		d.text(limio.FieldDescription, e.Data.Description, c.desc)
		p.emit(d)
	}
	// A pending entry the preview no longer holds was either billed (the
	// preview starts at the next billing period, so on a bill run the period
	// just billed drops out of it) or is no longer billed at all.
	billed, netted := p.billedThrough(), p.nettedCharges()
	var cancel []limio.Schedule
	for i, e := range existing {
		if matched[i] || !strings.EqualFold(e.Status, limio.SchedulePending) || day(e.Data.Date) < p.today {
			continue
		}
		charge, _, _ := strings.Cut(e.Data.Reference, ":")
		// A discount's or credit's own entry (earlier zsync versions made
		// them) is netted now: cancelled, even for a billed period.
		if through, ok := billed[charge]; ok && day(e.Data.Date) < through && !netted[charge] {
			d := newDiff(limio.RecordSchedule, limio.PathSchedules, e.ID)
			d.text(limio.FieldStatus, e.Status, limio.ScheduleActive)
			p.emit(d)
			continue
		}
		cancel = append(cancel, e)
	}
	sort.Slice(cancel, func(i, j int) bool {
		if a, b := day(cancel[i].Data.Date), day(cancel[j].Data.Date); a != b {
			return a < b
		}
		return cancel[i].ID < cancel[j].ID
	})
	for _, e := range cancel {
		d := newDiff(limio.RecordSchedule, limio.PathSchedules, e.ID)
		d.set(OpCancel, limio.FieldStatus, e.Status, limio.ScheduleCancelled, limio.ScheduleCancelled)
		p.emit(d)
	}
}

// billedThrough maps each charge number to the date Zuora has billed it
// through (its chargedThroughDate; the latest across segments).
func (p *planner) billedThrough() map[string]string {
	out := map[string]string{}
	for _, rp := range p.zs.RatePlans {
		for _, c := range rp.RatePlanCharges {
			if c.Number == "" {
				continue
			}
			out[c.Number] = max(out[c.Number], day(c.ChargedThroughDate))
			for _, sg := range c.ChargeSegments {
				out[c.Number] = max(out[c.Number], day(sg.ChargedThroughDate))
			}
		}
	}
	return out
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
