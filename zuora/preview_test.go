package zuora_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/zsync/zsync/zuora"
)

// lines render items compactly: subscription, charge, service period,
// amount with exact digits, processing type, and for a discount "→" the
// charge number of the item it names in appliedToItemId.
func lines(items []zuora.InvoiceItem) []string {
	number := map[string]string{}
	for _, it := range items {
		number[it.ID] = it.ChargeNumber
	}
	var out []string
	for _, it := range items {
		s := fmt.Sprintf("%s %s %s..%s %s %s", it.SubscriptionNumber, it.ChargeNumber,
			it.ServiceStartDate, it.ServiceEndDate, it.ChargeAmount.StringFixed(2), it.ProcessingType)
		if it.AppliedToItemID != "" {
			s += " →" + number[it.AppliedToItemID]
		}
		out = append(out, s)
	}
	return out
}

func TestBillingPreviewMath(t *testing.T) {
	t.Parallel()
	_, c := setup(t, nil)
	monthly := func(start, end string) []string {
		return []string{
			"A-S00000101 C-00000101 " + start + ".." + end + " 15.99 Charge",
			"A-S00000101 C-00000103 " + start + ".." + end + " 1.60 Discount →C-00000101",
		}
	}
	termed := slices.Concat(
		monthly("2026-07-01", "2026-07-31"), monthly("2026-08-01", "2026-08-31"),
		monthly("2026-09-01", "2026-09-30"), monthly("2026-10-01", "2026-10-31"),
		monthly("2026-11-01", "2026-11-30"), monthly("2026-12-01", "2026-12-31"))
	tests := []struct {
		name string
		req  zuora.BillingPreviewRequest
		want []string
	}{
		{"termed to term end", zuora.BillingPreviewRequest{AccountNumber: "A00000101", TargetDate: "2026-12-31"}, termed},
		{"termed capped at term end", zuora.BillingPreviewRequest{AccountNumber: "A00000101", TargetDate: "2027-03-31"}, termed},
		{"target inside the term", zuora.BillingPreviewRequest{AccountNumber: "A00000101", TargetDate: "2026-08-01"},
			slices.Concat(monthly("2026-07-01", "2026-07-31"), monthly("2026-08-01", "2026-08-31"))},
		{"auto-renewal assumed", zuora.BillingPreviewRequest{AccountID: "8a8aa0c19a4f01010000000000acc101",
			TargetDate: "2027-01-31", AssumeRenewal: "Autorenew"},
			append(slices.Clone(termed),
				"A-S00000101 C-00000101 2027-01-01..2027-01-31 15.99 Charge",
				"A-S00000101 C-00000102 2027-01-01..2027-12-31 120.00 Charge",
				"A-S00000101 C-00000103 2027-01-01..2027-01-31 1.60 Discount →C-00000101",
				"A-S00000101 C-00000103 2027-01-01..2027-12-31 12.00 Discount →C-00000102")},
		{"evergreen left out by default", zuora.BillingPreviewRequest{AccountNumber: "A00000102", TargetDate: "2027-01-31"}, nil},
		{"evergreen included", zuora.BillingPreviewRequest{AccountNumber: "A00000102", TargetDate: "2027-01-31",
			IncludingEvergreenSubscription: true}, []string{
			"A-S00000102 C-00000201 2026-11-01..2026-11-30 9.99 Charge",
			"A-S00000102 C-00000201 2026-12-01..2026-12-31 9.99 Charge",
			"A-S00000102 C-00000202 2026-12-01..2026-12-01 25.00 Charge",
			"A-S00000102 C-00000201 2027-01-01..2027-01-31 9.99 Charge",
		}},
		{"one-time excluded", zuora.BillingPreviewRequest{AccountNumber: "A00000102", TargetDate: "2026-12-31",
			IncludingEvergreenSubscription: true, ChargeTypeToExclude: "OneTime,Usage"}, []string{
			"A-S00000102 C-00000201 2026-11-01..2026-11-30 9.99 Charge",
			"A-S00000102 C-00000201 2026-12-01..2026-12-31 9.99 Charge",
		}},
		{"cancelled stops at the cancellation", zuora.BillingPreviewRequest{AccountNumber: "A00000103",
			TargetDate: "2027-06-30", AssumeRenewal: "All"}, []string{
			"A-S00000103 C-00000301 2026-07-01..2026-09-30 37.50 Charge",
			"A-S00000103 C-00000302 2026-07-01..2026-09-30 5.00 Discount →C-00000301",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bp, err := c.BillingPreview(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			got := lines(bp.InvoiceItems)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("items:\n%v\nwant:\n%v", got, tt.want)
			}
			if !bp.Success || bp.AccountID == "" {
				t.Errorf("success %v accountId %q", bp.Success, bp.AccountID)
			}
		})
	}
}

func TestBillingPreviewItemFields(t *testing.T) {
	t.Parallel()
	_, c := setup(t, nil)
	bp, err := c.BillingPreview(context.Background(), zuora.BillingPreviewRequest{AccountNumber: "A00000103", TargetDate: "2026-12-31"})
	if err != nil {
		t.Fatal(err)
	}
	it := bp.InvoiceItems[0]
	if it.SubscriptionName != "A-S00000103" || it.SubscriptionID != "8a8aa0c19a4f0103000000000000a103" ||
		it.ChargeName != "Review Seats" || it.ChargeDescription != "Per seat, billed quarterly" ||
		it.ProductName != "Quarterly Review" || it.Quantity.String() != "3" || it.ChargeType != "Recurring" ||
		it.UnitOfMeasure != "Seat" || it.ID == "" || it.ChargeID == "" {
		t.Errorf("item fields: %+v", it)
	}
	// Deterministic: the same question gives the same answer, ids included.
	again, err := c.BillingPreview(context.Background(), zuora.BillingPreviewRequest{AccountNumber: "A00000103", TargetDate: "2026-12-31"})
	if err != nil || again.InvoiceItems[0].ID != it.ID {
		t.Errorf("not deterministic: %v %v", again, err)
	}
}
