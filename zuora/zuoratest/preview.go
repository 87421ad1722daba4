package zuoratest

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zsync/zsync/zuora"
)

// The billing preview is computed from the stored rate plan charges, with
// these simplifications (Zuora's real rating is far richer):
//   - recurring charges are billed in advance, one item per billing period,
//     periods aligned to the next billing date (chargedThroughDate, else
//     effectiveStartDate); IN_ARREARS is treated as in advance;
//   - no proration: a period cut short by a cancellation or the term end is
//     charged in full (its serviceEndDate is clipped);
//   - FlatFee is the price, PerUnit price × quantity; other models (tiered,
//     volume, usage) produce no items;
//   - discounts apply to the same rate plan's charges ("rateplan" level, the
//     default) or to the whole subscription ("subscription" and "account"
//     levels), to the items starting within the discount's own period: one
//     discount line per item it reduces, with the item's service period; a
//     percentage applies to every such item (credits too), a fixed amount to
//     the positive ones in turn until it is used up;
//   - no tax; chargeDate is the sandbox clock at the request.
//
// The answer has the published shape (Zuora's 200 example): discounts are
// positive, processingType "Discount", their own chargeNumber and
// appliedToItemId naming the item reduced. PreviewForm switches to the other
// forms tenants send.

// PreviewForm is the shape of the billing preview's answer.
type PreviewForm struct {
	// NegativeDiscounts sends discounts as negative chargeAmounts without
	// appliedToItemId, as other tenants' previews show them.
	NegativeDiscounts bool `json:"negative_discounts"`
	// InvoiceSettlement sends negative charges as creditMemoItems (positive
	// amount and amountWithoutTax) with the discounts applied to them, as
	// Zuora does with Invoice Settlement on; off, they are negative invoice
	// items.
	InvoiceSettlement bool `json:"invoice_settlement"`
}

// maxPeriods stops a far targetDate with assumeRenewal from looping for ever.
const maxPeriods = 600

// periodMonths is the length of the billing periods the sandbox knows.
var periodMonths = map[string]int{
	"Month": 1, "Quarter": 3, "Semi_Annual": 6, "Annual": 12,
	"Eighteen_Months": 18, "Two_Years": 24, "Three_Years": 36, "Five_Years": 60,
}

func parseDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.DateOnly, s)
	return t, err == nil
}

func fmtDate(t time.Time) string { return t.Format(time.DateOnly) }

// addMonths keeps the anchor's day of month, clamped to the month's length
// (Jan 31 + 1 month = Feb 28), as billing periods do.
func addMonths(anchor time.Time, n int) time.Time {
	y, m, d := anchor.Date()
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(d, last), 0, 0, 0, 0, time.UTC)
}

type period struct{ start, end time.Time } // end inclusive

// chargeItem is an item with the rate plan it came from, for discounts.
type chargeItem struct {
	item zuora.InvoiceItem
	plan int
	typ  string // the charge's type, for applyDiscountTo
}

// previewAnswer is the computed preview, in the form asked for.
type previewAnswer struct {
	items   []zuora.InvoiceItem
	credits []zuora.CreditMemoItem
}

// preview computes the invoice and credit memo items of req's account from
// its subscriptions; now is the items' chargeDate.
func preview(subs []zuora.Subscription, req zuora.BillingPreviewRequest, form PreviewForm, now time.Time) (previewAnswer, error) {
	target, ok := parseDate(req.TargetDate)
	if !ok {
		return previewAnswer{}, fmt.Errorf("targetDate must be YYYY-MM-DD")
	}
	exclude := map[string]bool{}
	for _, t := range strings.Split(req.ChargeTypeToExclude, ",") {
		exclude[strings.ToLower(strings.TrimSpace(t))] = true
	}
	var items []zuora.InvoiceItem
	for _, sub := range subs {
		items = append(items, previewSubscription(sub, req, target, exclude)...)
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.SubscriptionNumber != b.SubscriptionNumber {
			return a.SubscriptionNumber < b.SubscriptionNumber
		}
		if a.ServiceStartDate != b.ServiceStartDate {
			return a.ServiceStartDate < b.ServiceStartDate
		}
		if a.ProcessingType != b.ProcessingType {
			return a.ProcessingType < b.ProcessingType // Charge before Discount
		}
		return a.ChargeNumber < b.ChargeNumber
	})
	return shape(items, form, now), nil
}

// shape puts the computed items (positive, linked discounts; negative
// charges as invoice items) in the form asked for.
func shape(items []zuora.InvoiceItem, form PreviewForm, now time.Time) previewAnswer {
	credit := map[string]bool{} // ids of the negative charges
	if form.InvoiceSettlement {
		for _, it := range items {
			if it.ProcessingType == "Charge" && it.ChargeAmount.IsNegative() {
				credit[it.ID] = true
			}
		}
	}
	var out previewAnswer
	for _, it := range items {
		it.ChargeDate = zuora.PreviewTime{Time: now.UTC().Truncate(time.Second)}
		onCredit := credit[it.ID] || credit[it.AppliedToItemID]
		if it.ProcessingType == "Discount" && form.NegativeDiscounts {
			it.ChargeAmount = zuora.Amount{Decimal: it.ChargeAmount.Neg()}
			it.AppliedToItemID = ""
		}
		switch {
		case !onCredit:
			out.items = append(out.items, it)
		case credit[it.ID]:
			out.credits = append(out.credits, creditItem(it))
		default: // a discount applied to a credit, in the invoice item's shape
			out.credits = append(out.credits, zuora.CreditMemoItem{
				ID: it.ID, SubscriptionName: it.SubscriptionName, SubscriptionID: it.SubscriptionID,
				SubscriptionNumber: it.SubscriptionNumber, ServiceStartDate: it.ServiceStartDate,
				ServiceEndDate: it.ServiceEndDate, ChargeAmount: amountPtr(it.ChargeAmount.Decimal),
				TaxAmount: amountPtr(decimal.Zero), ChargeDescription: it.ChargeDescription, ChargeName: it.ChargeName,
				ChargeNumber: it.ChargeNumber, ChargeID: it.ChargeID, ProductName: it.ProductName,
				Quantity: amountPtr(it.Quantity.Decimal), UnitOfMeasure: it.UnitOfMeasure, ChargeDate: it.ChargeDate,
				ChargeType: it.ChargeType, ProcessingType: it.ProcessingType, AppliedToItemID: it.AppliedToItemID,
			})
		}
	}
	return out
}

// creditItem is a negative charge as a credit memo item: positive amounts.
func creditItem(it zuora.InvoiceItem) zuora.CreditMemoItem {
	amount := it.ChargeAmount.Abs()
	return zuora.CreditMemoItem{
		ID: it.ID, SubscriptionID: it.SubscriptionID, SubscriptionNumber: it.SubscriptionNumber,
		ServiceStartDate: it.ServiceStartDate, ServiceEndDate: it.ServiceEndDate,
		Amount: amountPtr(amount), AmountWithoutTax: amountPtr(amount), SKUName: it.ChargeName,
		ChargeNumber: it.ChargeNumber, RatePlanChargeID: it.ChargeID, Quantity: amountPtr(it.Quantity.Decimal),
		UnitOfMeasure: it.UnitOfMeasure, ChargeDate: it.ChargeDate, ChargeType: it.ChargeType, ProcessingType: "Charge",
	}
}

func amountPtr(d decimal.Decimal) *zuora.Amount { return &zuora.Amount{Decimal: d} }

func previewSubscription(sub zuora.Subscription, req zuora.BillingPreviewRequest, target time.Time, exclude map[string]bool) []zuora.InvoiceItem {
	if strings.EqualFold(sub.Status, "Draft") {
		return nil
	}
	evergreen := strings.EqualFold(sub.TermType, "EVERGREEN")
	if evergreen && !req.IncludingEvergreenSubscription {
		return nil
	}
	renewing := !evergreen && strings.EqualFold(sub.Status, "Active") &&
		(strings.EqualFold(req.AssumeRenewal, "All") ||
			(strings.EqualFold(req.AssumeRenewal, "Autorenew") && bool(sub.AutoRenew)))
	var termEnd time.Time
	if !evergreen && !renewing {
		termEnd, _ = parseDate(sub.TermEndDate)
	}

	var charges []chargeItem
	type discount struct {
		c    zuora.Charge
		plan int
		rp   zuora.RatePlan
	}
	var discounts []discount
	for pi, rp := range sub.RatePlans {
		for _, c := range rp.RatePlanCharges {
			if exclude[strings.ToLower(c.Type)] || strings.EqualFold(c.Type, "Usage") {
				continue
			}
			if isDiscount(c.Model) {
				discounts = append(discounts, discount{c, pi, rp})
				continue
			}
			var amount decimal.Decimal
			switch c.Model {
			case "FlatFee":
				amount = c.Price.Decimal
			case "PerUnit":
				amount = c.Price.Mul(c.Quantity.Decimal)
			default:
				continue
			}
			for _, p := range chargePeriods(c, sub, renewing, termEnd, target) {
				charges = append(charges, chargeItem{item: newItem(sub, rp, c, p, amount.Round(2), "Charge", ""), plan: pi, typ: c.Type})
			}
		}
	}

	out := make([]zuora.InvoiceItem, 0, len(charges))
	for _, ci := range charges {
		out = append(out, ci.item)
	}
	for _, d := range discounts {
		for _, p := range chargePeriods(d.c, sub, renewing, termEnd, target) {
			left := d.c.DiscountAmount.Decimal // a fixed amount, used up item by item
			if left.IsZero() {
				left = d.c.Price.Decimal
			}
			for _, ci := range charges {
				if !inScope(d.c, d.plan, ci) {
					continue
				}
				s, _ := parseDate(ci.item.ServiceStartDate)
				if s.Before(p.start) || s.After(p.end) {
					continue
				}
				var off decimal.Decimal
				if d.c.Model == "DiscountPercentage" {
					off = ci.item.ChargeAmount.Abs().Mul(d.c.DiscountPercentage.Decimal).Div(decimal.NewFromInt(100)).Round(2)
				} else if ci.item.ChargeAmount.IsPositive() {
					off = decimal.Min(left, ci.item.ChargeAmount.Decimal).Round(2)
					left = left.Sub(off)
				}
				if !off.IsPositive() {
					continue
				}
				it := newItem(sub, d.rp, d.c, period{s, s}, off, "Discount", ci.item.ID)
				it.ServiceEndDate, it.Quantity = ci.item.ServiceEndDate, zuora.Amount{Decimal: decimal.Zero}
				out = append(out, it)
			}
		}
	}
	return out
}

func isDiscount(model string) bool {
	return model == "DiscountFixedAmount" || model == "DiscountPercentage"
}

// inScope reports whether discount d (on rate plan plan) applies to ci.
func inScope(d zuora.Charge, plan int, ci chargeItem) bool {
	if to := strings.ToUpper(d.ApplyDiscountTo); to != "" && !strings.Contains(to, strings.ToUpper(ci.typ)) {
		return false
	}
	switch strings.ToLower(d.DiscountLevel) {
	case "subscription", "account":
		return true
	default:
		return ci.plan == plan
	}
}

// chargePeriods lists the future service periods of c that start on or
// before target and before the charge (or the capped term) ends.
func chargePeriods(c zuora.Charge, sub zuora.Subscription, renewing bool, termEnd, target time.Time) []period {
	end, hasEnd := parseDate(c.EffectiveEndDate)
	// A charge that simply ends with the term goes on when renewal is assumed;
	// an earlier end (a cancellation, a removed product) still stops it.
	if hasEnd && renewing && (c.EndDateCondition == "Subscription_End" || c.EffectiveEndDate == sub.TermEndDate) {
		hasEnd = false
	}
	if !termEnd.IsZero() && (!hasEnd || termEnd.Before(end)) {
		end, hasEnd = termEnd, true
	}
	before := func(t time.Time) bool { return !hasEnd || t.Before(end) }

	if strings.EqualFold(c.Type, "OneTime") {
		start, ok := parseDate(c.EffectiveStartDate)
		if !ok || c.ChargedThroughDate != "" || start.After(target) || !before(start) {
			return nil
		}
		return []period{{start, start}}
	}
	anchor, ok := parseDate(c.ChargedThroughDate)
	if !ok {
		if anchor, ok = parseDate(c.EffectiveStartDate); !ok {
			return nil
		}
	}
	step := func(i int) time.Time {
		if c.BillingPeriod == "Week" {
			return anchor.AddDate(0, 0, 7*i)
		}
		return addMonths(anchor, i*periodMonths[c.BillingPeriod])
	}
	if c.BillingPeriod != "Week" && periodMonths[c.BillingPeriod] == 0 {
		return nil
	}
	var out []period
	for i := 0; i < maxPeriods; i++ {
		ps := step(i)
		if ps.After(target) || !before(ps) {
			break
		}
		next := step(i + 1)
		if hasEnd && next.After(end) {
			next = end
		}
		out = append(out, period{ps, next.AddDate(0, 0, -1)})
	}
	return out
}

func newItem(sub zuora.Subscription, rp zuora.RatePlan, c zuora.Charge, p period, amount decimal.Decimal, processing, appliedTo string) zuora.InvoiceItem {
	h := sha1.Sum([]byte(sub.ID + "|" + c.Number + "|" + fmtDate(p.start) + "|" + processing + "|" + appliedTo))
	return zuora.InvoiceItem{
		ID:                 hex.EncodeToString(h[:16]),
		SubscriptionName:   sub.SubscriptionNumber,
		SubscriptionID:     sub.ID,
		SubscriptionNumber: sub.SubscriptionNumber,
		ServiceStartDate:   fmtDate(p.start),
		ServiceEndDate:     fmtDate(p.end),
		ChargeAmount:       zuora.Amount{Decimal: amount},
		TaxAmount:          zuora.Amount{Decimal: decimal.Zero},
		ChargeDescription:  c.Description,
		ChargeName:         c.Name,
		ChargeNumber:       c.Number,
		ChargeID:           c.ID,
		ProductName:        rp.ProductName,
		Quantity:           c.Quantity,
		UnitOfMeasure:      c.UOM,
		ChargeType:         c.Type,
		ProcessingType:     processing,
		AppliedToItemID:    appliedTo,
	}
}
