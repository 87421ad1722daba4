package syncer

import (
	"slices"
	"testing"

	"github.com/zsync/zsync/zuora"
)

// inv is a preview invoice item of A-S1.
func inv(id, number, start, amount, processing, appliedTo string) zuora.InvoiceItem {
	return zuora.InvoiceItem{ID: id, SubscriptionNumber: "A-S1", ServiceStartDate: start, ChargeNumber: number,
		ChargeName: number + " name", ChargeAmount: zuora.NewAmount(amount), ProcessingType: processing, AppliedToItemID: appliedTo}
}

// memo is a credit memo item of A-S1; amounts given as "" are absent.
func memo(id, number, start, amount, withoutTax, chargeAmount, processing, appliedTo string) zuora.CreditMemoItem {
	opt := func(s string) *zuora.Amount {
		if s == "" {
			return nil
		}
		a := zuora.NewAmount(s)
		return &a
	}
	return zuora.CreditMemoItem{ID: id, SubscriptionNumber: "A-S1", ServiceStartDate: start, ChargeNumber: number,
		Amount: opt(amount), AmountWithoutTax: opt(withoutTax), ChargeAmount: opt(chargeAmount), ProcessingType: processing, AppliedToItemID: appliedTo}
}

// Each rule of the preview's netting (preview.go), one case at least.
func TestWantScheduleNetting(t *testing.T) {
	t.Parallel()
	const dec, jan = "2026-12-01", "2027-01-01"
	tests := []struct {
		name     string
		items    []zuora.InvoiceItem
		credits  []zuora.CreditMemoItem
		currency string
		want     []string
	}{
		{"positive discount linked to its charge (published form)", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "12.99", "Charge", ""), inv("d", "C-D", dec, "2.00", "Discount", "a")}, nil, "",
			[]string{"C-1:2026-12-01 10.99"}},
		{"negative discount linked to its charge", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "12.99", "Charge", ""), inv("d", "C-D", dec, "-2.00", "Discount", "a")}, nil, "",
			[]string{"C-1:2026-12-01 10.99"}},
		{"processingType read in any case", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "12.99", "charge", ""), inv("d", "C-D", dec, "2.00", "discount", "a")}, nil, "",
			[]string{"C-1:2026-12-01 10.99"}},
		{"a linked discount reduces only the line it names", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "12.99", "Charge", ""), inv("b", "C-2", dec, "5.00", "Charge", ""),
			inv("d", "C-D", dec, "1.00", "Discount", "b")}, nil, "",
			[]string{"C-1:2026-12-01 12.99", "C-2:2026-12-01 4.00"}},
		{"an unlinked discount comes off the period's entries in identity order, none below zero", []zuora.InvoiceItem{
			inv("b", "C-2", dec, "5.00", "Charge", ""), inv("a", "C-1", dec, "1.00", "Charge", ""),
			inv("", "C-D", dec, "-2.00", "Discount", "")}, nil, "",
			[]string{"C-1:2026-12-01 0.00", "C-2:2026-12-01 4.00"}},
		{"a credit skips an entry already at or below zero", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "1.00", "Charge", ""), inv("d", "C-D", dec, "2.00", "Discount", "a"),
			inv("b", "C-2", dec, "5.00", "Charge", ""), inv("m", "C-3", dec, "-1.00", "Charge", "")}, nil, "",
			[]string{"C-1:2026-12-01 -1.00", "C-2:2026-12-01 4.00"}},
		{"a discount naming no line of the preview reduces its period", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "10.00", "Charge", ""), inv("b", "C-1", jan, "10.00", "Charge", ""),
			inv("d", "C-D", jan, "3.00", "Discount", "gone")}, nil, "",
			[]string{"C-1:2026-12-01 10.00", "C-1:2027-01-01 7.00"}},
		{"a credit memo item reduces its period, without tax", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "100", "Charge", "")}, []zuora.CreditMemoItem{
			memo("m", "C-2", dec, "55", "50", "", "Charge", "")}, "",
			[]string{"C-1:2026-12-01 50.00"}},
		{"a credit memo item with only amount", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "100", "Charge", "")}, []zuora.CreditMemoItem{
			memo("m", "C-2", dec, "-50", "", "", "Charge", "")}, "",
			[]string{"C-1:2026-12-01 50.00"}},
		{"a discount applied to a credit memo item reduces the credit (Zuora's example)", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "100", "Charge", ""), inv("d", "C-3", dec, "10", "Discount", "a")}, []zuora.CreditMemoItem{
			memo("m", "C-2", dec, "50", "50", "", "Charge", ""), memo("d", "C-3", dec, "", "", "5", "Discount", "m")}, "",
			[]string{"C-1:2026-12-01 45.00"}},
		{"an unlinked discount among credit memo items reduces the period's credit", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "100", "Charge", "")}, []zuora.CreditMemoItem{
			memo("m", "C-2", dec, "50", "50", "", "Charge", ""), memo("", "C-3", dec, "", "", "-5", "Discount", "")}, "",
			[]string{"C-1:2026-12-01 55.00"}},
		{"credit memo discounts beyond the period's credits are due again, on its first entry", []zuora.InvoiceItem{
			inv("b", "C-5", dec, "10", "Charge", ""), inv("a", "C-1", dec, "100", "Charge", "")}, []zuora.CreditMemoItem{
			memo("m", "C-2", dec, "5", "5", "", "Charge", ""), memo("", "C-3", dec, "", "", "8", "Discount", "")}, "",
			[]string{"C-1:2026-12-01 103.00", "C-5:2026-12-01 10.00"}},
		{"a negative charge line is a credit (Invoice Settlement off)", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "100", "Charge", ""), inv("m", "C-2", dec, "-50", "Charge", ""),
			inv("d", "C-3", dec, "5", "Discount", "m")}, nil, "",
			[]string{"C-1:2026-12-01 55.00"}},
		{"a credit larger than its period's charges leaves an entry of its own", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "10", "Charge", "")}, []zuora.CreditMemoItem{
			memo("m", "C-2", dec, "25", "25", "", "Charge", "")}, "",
			[]string{"C-1:2026-12-01 0.00", "C-2:2026-12-01 -15.00"}},
		{"a credit in a period without charges", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "10", "Charge", "")}, []zuora.CreditMemoItem{
			memo("m", "C-9", jan, "5", "5", "", "Charge", ""), memo("n", "C-8", jan, "1", "1", "", "Charge", "")}, "",
			[]string{"C-1:2026-12-01 10.00", "C-8:2027-01-01 -6.00"}},
		{"tax left out", []zuora.InvoiceItem{
			func() zuora.InvoiceItem {
				it := inv("a", "C-1", dec, "10", "Charge", "")
				it.TaxAmount = zuora.NewAmount("2")
				return it
			}(), inv("t", "C-1", dec, "2", "Tax", "")}, []zuora.CreditMemoItem{
			memo("x", "C-1", dec, "1", "1", "", "Tax", "")}, "",
			[]string{"C-1:2026-12-01 10.00"}},
		{"a split period adds up, then is rounded", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "10.004", "Charge", ""), inv("b", "C-1", dec, "10.004", "Charge", "")}, nil, "USD",
			[]string{"C-1:2026-12-01 20.01"}},
		{"rounded to the currency's scale", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "1000.5", "Charge", ""), inv("d", "C-D", dec, "0.25", "Discount", "a")}, nil, "JPY",
			[]string{"C-1:2026-12-01 1000"}},
		{"other subscriptions and lines past the term end are left out", []zuora.InvoiceItem{
			inv("a", "C-1", dec, "10", "Charge", ""), inv("b", "C-1", "2027-06-01", "10", "Charge", ""),
			func() zuora.InvoiceItem {
				it := inv("c", "C-5", dec, "9", "Charge", "")
				it.SubscriptionNumber = "A-S2"
				return it
			}()},
			[]zuora.CreditMemoItem{func() zuora.CreditMemoItem {
				it := memo("m", "C-6", dec, "4", "4", "", "Charge", "")
				it.SubscriptionNumber = "A-S2"
				return it
			}()}, "",
			[]string{"C-1:2026-12-01 10.00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			zs := &zuora.Subscription{SubscriptionNumber: "A-S1", TermType: "TERMED", TermEndDate: "2027-06-01"}
			p := &planner{z: ZuoraState{Subscription: zs, Preview: tt.items, Credits: tt.credits}, zs: zs, currency: tt.currency}
			var got []string
			for _, c := range p.wantSchedule() {
				got = append(got, c.ref+" "+formatAmount(c.amount, tt.currency))
				if !c.amount.Equal(roundAmount(c.amount, tt.currency)) {
					t.Errorf("%s amount %s is not rounded to the currency's scale", c.ref, c.amount)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("schedule = %v; want %v", got, tt.want)
			}
		})
	}
}

// The charges whose own entries are cancelled even for a billed period: known
// from the preview (an account-level discount lives in another subscription)
// and from the subscription (a discount that ended is no longer previewed).
func TestNettedCharges(t *testing.T) {
	t.Parallel()
	zs := &zuora.Subscription{SubscriptionNumber: "A-S1", RatePlans: []zuora.RatePlan{{RatePlanCharges: []zuora.Charge{
		{Number: "C-1", Model: "FlatFee", Price: zuora.NewAmount("10")},
		{Number: "C-D", Model: "DiscountFixedAmount"},
		{Number: "C-E", Model: "FlatFee", Price: zuora.NewAmount("-5")},
	}}}}
	p := &planner{zs: zs, z: ZuoraState{Subscription: zs,
		Preview: []zuora.InvoiceItem{
			inv("a", "C-1", "2026-12-01", "10", "Charge", ""), inv("d", "C-A", "2026-12-01", "1", "Discount", "a"),
			inv("b", "C-B", "2026-12-01", "-2", "Charge", "")},
		Credits: []zuora.CreditMemoItem{memo("m", "C-C", "2026-12-01", "3", "3", "", "Charge", "")}}}
	var got []string
	for n := range p.nettedCharges() {
		got = append(got, n)
	}
	slices.Sort(got)
	if want := []string{"C-A", "C-B", "C-C", "C-D", "C-E"}; !slices.Equal(got, want) {
		t.Errorf("netted = %v; want %v", got, want)
	}
}
