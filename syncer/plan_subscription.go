package syncer

import (
	"sort"
	"strconv"
	"strings"

	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

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
