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
//     levels), to the items starting within the discount's own period;
//   - no tax, no credit memo items, no chargeDate (no clock is read).
//
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

// preview computes the invoice items of req's account from its subscriptions.
func preview(subs []zuora.Subscription, req zuora.BillingPreviewRequest) ([]zuora.InvoiceItem, error) {
	target, ok := parseDate(req.TargetDate)
	if !ok {
		return nil, fmt.Errorf("targetDate must be YYYY-MM-DD")
	}
	exclude := map[string]bool{}
	for _, t := range strings.Split(req.ChargeTypeToExclude, ",") {
		exclude[strings.ToLower(strings.TrimSpace(t))] = true
	}
	var out []zuora.InvoiceItem
	for _, sub := range subs {
		out = append(out, previewSubscription(sub, req, target, exclude)...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
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
	return out, nil
}

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
				charges = append(charges, chargeItem{item: newItem(sub, rp, c, p, amount.Round(2), "Charge"), plan: pi, typ: c.Type})
			}
		}
	}

	out := make([]zuora.InvoiceItem, 0, len(charges))
	for _, ci := range charges {
		out = append(out, ci.item)
	}
	for _, d := range discounts {
		for _, p := range chargePeriods(d.c, sub, renewing, termEnd, target) {
			base := decimal.Zero
			for _, ci := range charges {
				if !inScope(d.c, d.plan, ci) {
					continue
				}
				if s, _ := parseDate(ci.item.ServiceStartDate); !s.Before(p.start) && !s.After(p.end) {
					base = base.Add(ci.item.ChargeAmount.Decimal)
				}
			}
			if !base.IsPositive() {
				continue // nothing to discount in this period
			}
			var off decimal.Decimal
			if d.c.Model == "DiscountPercentage" {
				off = base.Mul(d.c.DiscountPercentage.Decimal).Div(decimal.NewFromInt(100)).Round(2)
			} else {
				off = d.c.DiscountAmount.Decimal
				if off.IsZero() {
					off = d.c.Price.Decimal
				}
				off = decimal.Min(off, base).Round(2)
			}
			if off.IsZero() {
				continue
			}
			out = append(out, newItem(sub, d.rp, d.c, p, off.Neg(), "Discount"))
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

func newItem(sub zuora.Subscription, rp zuora.RatePlan, c zuora.Charge, p period, amount decimal.Decimal, processing string) zuora.InvoiceItem {
	h := sha1.Sum([]byte(sub.ID + "|" + c.Number + "|" + fmtDate(p.start) + "|" + processing))
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
	}
}
