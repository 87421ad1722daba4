package syncer

import (
	"sort"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/zsync/zsync/zuora"
)

// The billing preview read as the schedule (README "What a sync does"). An
// entry is what the customer will pay for one charge period, without tax:
//   - a charge line makes an entry, identity <chargeNumber>:<serviceStartDate>;
//     lines sharing it (a split period) add up;
//   - a discount line (processingType Discount, positive as in Zuora's example
//     or negative as other tenants send it) reduces the line its
//     appliedToItemId names: a charge's entry, or a credit;
//   - a credit (a credit memo item, or a negative charge line when Invoice
//     Settlement is off) reduces what is due for its period;
//   - a discount naming no line of the preview reduces what is due for its
//     period; found among the credit memo items, it reduces the period's credit;
//   - what a period's credits take off comes off its entries in identity
//     order, none below zero; what is left (a credit larger than the period's
//     charges) is an entry of its own, negative, identity
//     <the credit's chargeNumber>:<serviceStartDate>;
//   - tax is left out: chargeAmount excludes it whatever the tax mode, and
//     taxAmount is only computed for Zuora Tax tax-inclusive charges, so
//     including it would make like charges differ; credits use
//     amountWithoutTax, and Tax lines are skipped;
//   - the net is rounded to the currency's scale.

// charge is one desired schedule entry.
type charge struct {
	ref, date, desc string
	amount          decimal.Decimal
}

// credit is what a credit takes off its period (positive).
type credit struct {
	number, date, desc string
	amount             decimal.Decimal
}

// discount is a discount line: its size (positive), and what it reduces.
type discount struct {
	appliedTo, date, number, desc string
	amount                        decimal.Decimal
	onCredit                      bool // a credit memo item: an unlinked one reduces the credit
}

func isDiscountLine(processingType string) bool { return strings.EqualFold(processingType, "Discount") }
func isTaxLine(processingType string) bool      { return strings.EqualFold(processingType, "Tax") }

// creditAmount is a credit memo item's size without tax: amountWithoutTax,
// else amount, else chargeAmount (a discount comes in the invoice item's shape).
func creditAmount(it zuora.CreditMemoItem) decimal.Decimal {
	for _, a := range []*zuora.Amount{it.AmountWithoutTax, it.Amount, it.ChargeAmount} {
		if a != nil {
			return a.Abs()
		}
	}
	return decimal.Zero
}

// wantSchedule keeps this subscription's preview items before the term end
// and nets them into entries, sorted by date then identity.
func (p *planner) wantSchedule() []charge {
	end := deref(wantTermEnd(p.zs))
	keep := func(number, name, start string) bool {
		return strings.EqualFold(firstNonEmpty(number, name), p.zs.SubscriptionNumber) && start != "" && (end == "" || start < end)
	}
	var out []charge
	byRef := map[string]int{}   // identity → entry
	entryOf := map[string]int{} // charge line id → entry
	var credits []*credit
	creditOf := map[string]*credit{} // credit line id → credit
	var discounts []discount
	addCredit := func(id string, c *credit) {
		credits = append(credits, c)
		if id != "" {
			creditOf[id] = c
		}
	}
	for _, it := range p.z.Preview {
		start := day(it.ServiceStartDate)
		if !keep(it.SubscriptionNumber, it.SubscriptionName, start) || isTaxLine(it.ProcessingType) {
			continue
		}
		desc := firstNonEmpty(it.ChargeName, it.ChargeDescription)
		switch {
		case isDiscountLine(it.ProcessingType):
			discounts = append(discounts, discount{appliedTo: it.AppliedToItemID, date: start, number: it.ChargeNumber,
				desc: desc, amount: it.ChargeAmount.Abs()})
		case it.ChargeAmount.IsNegative():
			addCredit(it.ID, &credit{number: it.ChargeNumber, date: start, desc: desc, amount: it.ChargeAmount.Abs()})
		case it.ChargeNumber != "":
			ref := it.ChargeNumber + ":" + start
			i, ok := byRef[ref]
			if !ok {
				i = len(out)
				byRef[ref] = i
				out = append(out, charge{ref: ref, date: start, desc: desc})
			}
			out[i].amount = out[i].amount.Add(it.ChargeAmount.Decimal)
			if it.ID != "" {
				entryOf[it.ID] = i
			}
		}
	}
	for _, it := range p.z.Credits {
		start := day(it.ServiceStartDate)
		if !keep(it.SubscriptionNumber, it.SubscriptionName, start) || isTaxLine(it.ProcessingType) {
			continue
		}
		if isDiscountLine(it.ProcessingType) {
			discounts = append(discounts, discount{appliedTo: it.AppliedToItemID, date: start, amount: creditAmount(it), onCredit: true})
			continue
		}
		addCredit(it.ID, &credit{number: it.ChargeNumber, date: start,
			desc: firstNonEmpty(it.ChargeName, it.SKUName, it.Comment), amount: creditAmount(it)})
	}

	// What each period's credits and unlinked discounts take off.
	off := map[string]decimal.Decimal{}
	by := map[string]*credit{} // the credit a period's leftover is named after
	reduce := func(c *credit) {
		off[c.date] = off[c.date].Add(c.amount)
		if b := by[c.date]; b == nil || b.number == "" || c.number != "" && c.number < b.number {
			by[c.date] = c
		}
	}
	for _, d := range discounts {
		if i, ok := entryOf[d.appliedTo]; ok && d.appliedTo != "" {
			out[i].amount = out[i].amount.Sub(d.amount)
			continue
		}
		if c, ok := creditOf[d.appliedTo]; ok && d.appliedTo != "" {
			c.amount = c.amount.Sub(d.amount)
			continue
		}
		if d.onCredit {
			off[d.date] = off[d.date].Sub(d.amount)
		} else {
			reduce(&credit{number: d.number, date: d.date, desc: d.desc, amount: d.amount})
		}
	}
	for _, c := range credits {
		reduce(c)
	}
	perDate := map[string][]int{}
	for i := range out {
		perDate[out[i].date] = append(perDate[out[i].date], i)
	}
	dates := make([]string, 0, len(off))
	for d := range off {
		dates = append(dates, d)
	}
	sort.Strings(dates)
	for _, date := range dates {
		take, idx := off[date], perDate[date]
		sort.Slice(idx, func(a, b int) bool { return out[idx[a]].ref < out[idx[b]].ref })
		if take.IsNegative() && len(idx) > 0 { // credit discounts beyond the credits: due again
			out[idx[0]].amount = out[idx[0]].amount.Sub(take)
			continue
		}
		for _, i := range idx {
			if !take.IsPositive() {
				break
			}
			if out[i].amount.IsPositive() {
				t := decimal.Min(out[i].amount, take)
				out[i].amount, take = out[i].amount.Sub(t), take.Sub(t)
			}
		}
		if take.IsZero() {
			continue
		}
		c := by[date]
		if c == nil {
			c = &credit{}
		}
		ref := firstNonEmpty(c.number, "credit") + ":" + date
		if i, ok := byRef[ref]; ok {
			out[i].amount = out[i].amount.Sub(take)
			continue
		}
		byRef[ref] = len(out)
		out = append(out, charge{ref: ref, date: date, desc: c.desc, amount: take.Neg()})
	}
	for i := range out {
		out[i].amount = roundAmount(out[i].amount, p.currency)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].date != out[j].date {
			return out[i].date < out[j].date
		}
		return out[i].ref < out[j].ref
	})
	return out
}

// nettedCharges are the charge numbers whose lines are netted into other
// entries (discounts and credits): by the preview, and by the subscription's
// charges (a billed period is no longer in the preview).
func (p *planner) nettedCharges() map[string]bool {
	out := map[string]bool{}
	for _, it := range p.z.Preview {
		if isDiscountLine(it.ProcessingType) || it.ChargeAmount.IsNegative() {
			out[it.ChargeNumber] = true
		}
	}
	for _, it := range p.z.Credits {
		out[it.ChargeNumber] = true
	}
	for _, rp := range p.zs.RatePlans {
		for _, c := range rp.RatePlanCharges {
			if strings.HasPrefix(c.Model, "Discount") || c.Price.IsNegative() {
				out[c.Number] = true
			}
		}
	}
	delete(out, "")
	return out
}
