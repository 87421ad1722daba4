package zuora_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// formsSubscription has a 12.99 monthly charge, a -5.00 monthly credit and a
// 10% discount on both, for one month.
func formsSubscription() (zuora.Subscription, zuora.Account) {
	charge := func(id, number, name, price string) zuora.Charge {
		return zuora.Charge{ID: id, Number: number, Name: name, Type: "Recurring", Model: "FlatFee",
			Price: zuora.NewAmount(price), Quantity: zuora.NewAmount("1"), BillingPeriod: "Month",
			EffectiveStartDate: "2026-12-01", EffectiveEndDate: "2027-01-01"}
	}
	disc := zuora.Charge{ID: "ch-d", Number: "C-D", Name: "Ten Off", Type: "Recurring", Model: "DiscountPercentage",
		DiscountPercentage: zuora.NewAmount("10"), BillingPeriod: "Month", EffectiveStartDate: "2026-12-01", EffectiveEndDate: "2027-01-01"}
	sub := zuora.Subscription{ID: "sub-forms", SubscriptionNumber: "A-S00000900", AccountNumber: "A00000900",
		Status: "Active", TermType: "TERMED", TermStartDate: "2026-12-01", TermEndDate: "2027-01-01",
		RatePlans: []zuora.RatePlan{{ID: "rp-1", ProductName: "Digital", RatePlanCharges: []zuora.Charge{
			charge("ch-1", "C-1", "Digital Fee", "12.99"), charge("ch-2", "C-2", "Goodwill Credit", "-5.00"), disc}}}}
	acc := zuora.Account{BasicInfo: zuora.AccountBasicInfo{ID: "acc-900", AccountNumber: "A00000900"}}
	return sub, acc
}

// The sandbox answers in the published shape by default, and in the
// negative-discount and Invoice Settlement forms when switched.
func TestBillingPreviewForms(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 11, 24, 8, 30, 15, 0, time.UTC)
	tests := []struct {
		name        string
		form        zuoratest.PreviewForm
		wantItems   []string
		wantCredits []string
	}{
		{"published", zuoratest.PreviewForm{}, []string{
			"A-S00000900 C-1 2026-12-01..2026-12-31 12.99 Charge",
			"A-S00000900 C-2 2026-12-01..2026-12-31 -5.00 Charge",
			"A-S00000900 C-D 2026-12-01..2026-12-31 1.30 Discount →C-1",
			"A-S00000900 C-D 2026-12-01..2026-12-31 0.50 Discount →C-2",
		}, nil},
		{"negative discounts", zuoratest.PreviewForm{NegativeDiscounts: true}, []string{
			"A-S00000900 C-1 2026-12-01..2026-12-31 12.99 Charge",
			"A-S00000900 C-2 2026-12-01..2026-12-31 -5.00 Charge",
			"A-S00000900 C-D 2026-12-01..2026-12-31 -1.30 Discount",
			"A-S00000900 C-D 2026-12-01..2026-12-31 -0.50 Discount",
		}, nil},
		{"invoice settlement", zuoratest.PreviewForm{InvoiceSettlement: true}, []string{
			"A-S00000900 C-1 2026-12-01..2026-12-31 12.99 Charge",
			"A-S00000900 C-D 2026-12-01..2026-12-31 1.30 Discount →C-1",
		}, []string{
			"C-2 2026-12-01 Charge amount=5.00 amountWithoutTax=5.00",
			"C-D 2026-12-01 Discount chargeAmount=0.50 →C-2",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := contractServer(t)
			srv.SetClock(func() time.Time { return clock })
			sub, acc := formsSubscription()
			if err := srv.PutAccount(acc); err != nil {
				t.Fatal(err)
			}
			if err := srv.PutSubscription(sub); err != nil {
				t.Fatal(err)
			}
			// The switch is the admin endpoint, as `zsync sandbox` users set it.
			body := `{"negative_discounts":` + boolText(tt.form.NegativeDiscounts) + `,"invoice_settlement":` + boolText(tt.form.InvoiceSettlement) + `}`
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/sandbox/billing-preview-form", strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("switch form: %v %v", resp, err)
			}
			resp.Body.Close()
			c := newClient(t, srv.Config())
			bp, err := c.BillingPreview(t.Context(), zuora.BillingPreviewRequest{AccountNumber: "A00000900", TargetDate: "2026-12-31"})
			if err != nil {
				t.Fatal(err)
			}
			if got := lines(bp.InvoiceItems); !slices.Equal(got, tt.wantItems) {
				t.Errorf("invoice items:\n%v\nwant:\n%v", got, tt.wantItems)
			}
			if got := creditLines(bp); !slices.Equal(got, tt.wantCredits) {
				t.Errorf("credit memo items:\n%v\nwant:\n%v", got, tt.wantCredits)
			}
			for _, it := range bp.InvoiceItems {
				if !it.ChargeDate.Equal(clock) {
					t.Errorf("%s chargeDate = %v; want the sandbox clock %v", it.ChargeNumber, it.ChargeDate, clock)
				}
			}
		})
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// creditLines renders credit memo items: charge, start, processing type, the
// amounts present, and "→" the charge number the discount applies to.
func creditLines(bp *zuora.BillingPreview) []string {
	number := map[string]string{}
	for _, it := range bp.InvoiceItems {
		number[it.ID] = it.ChargeNumber
	}
	for _, it := range bp.CreditMemoItems {
		if it.ProcessingType != "Discount" {
			number[it.ID] = it.ChargeNumber
		}
	}
	var out []string
	for _, it := range bp.CreditMemoItems {
		s := it.ChargeNumber + " " + it.ServiceStartDate + " " + it.ProcessingType
		for _, a := range []struct {
			name string
			v    *zuora.Amount
		}{{"amount", it.Amount}, {"amountWithoutTax", it.AmountWithoutTax}, {"chargeAmount", it.ChargeAmount}} {
			if a.v != nil {
				s += " " + a.name + "=" + a.v.StringFixed(2)
			}
		}
		if it.AppliedToItemID != "" {
			s += " →" + number[it.AppliedToItemID]
		}
		out = append(out, s)
	}
	return out
}

// Both the example's forms (numbers, "YYYY-MM-DD HH:MM:SS") and the declared
// ones (decimal strings, RFC 3339) decode to the same values.
func TestBillingPreviewDecodesBothForms(t *testing.T) {
	t.Parallel()
	const example = `{"success":true,"accountId":"acc","invoiceItems":[{"id":"i1","subscriptionNumber":"A-S1","serviceStartDate":"2017-05-01",
		"chargeAmount":100,"taxAmount":0,"quantity":1,"chargeNumber":"C-1","chargeDate":"2017-01-06 16:38:26","processingType":"Charge","appliedToItemId":null}],
		"creditMemoItems":[{"id":"m1","subscriptionNumber":"A-S1","serviceStartDate":"2017-05-01","amount":50,"amountWithoutTax":50,"quantity":1,
		"chargeNumber":"C-2","chargeDate":"2017-01-06 16:38:26","processingType":"Charge"}]}`
	const declared = `{"success":true,"accountId":"acc","invoiceItems":[{"id":"i1","subscriptionNumber":"A-S1","serviceStartDate":"2017-05-01",
		"chargeAmount":"100.00","taxAmount":"0","quantity":"1","chargeNumber":"C-1","chargeDate":"2017-01-06T16:38:26Z","processingType":"charge"}],
		"creditMemoItems":[{"id":"m1","subscriptionNumber":"A-S1","serviceStartDate":"2017-05-01","amount":50.00,"amountWithoutTax":50.00,"quantity":"1",
		"chargeNumber":"C-2","chargeDate":"2017-01-06T16:38:26.000+00:00","processingType":"charge"}]}`
	want := time.Date(2017, 1, 6, 16, 38, 26, 0, time.UTC)
	for name, body := range map[string]string{"example": example, "declared": declared} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, c := setup(t, nil)
			srv.AddFault(sandbox.Fault{Path: "/v1/operations/billing-preview", Status: http.StatusOK, Body: body})
			bp, err := c.BillingPreview(context.Background(), zuora.BillingPreviewRequest{AccountNumber: "A00000101", TargetDate: "2017-06-01"})
			if err != nil {
				t.Fatal(err)
			}
			it, cm := bp.InvoiceItems[0], bp.CreditMemoItems[0]
			if it.ChargeAmount.String() != "100" || !it.TaxAmount.IsZero() || it.Quantity.String() != "1" || !it.ChargeDate.Equal(want) {
				t.Errorf("invoice item = %+v", it)
			}
			if cm.Amount == nil || cm.Amount.String() != "50" || cm.AmountWithoutTax == nil || cm.AmountWithoutTax.String() != "50" ||
				cm.ChargeAmount != nil || !cm.ChargeDate.Equal(want) {
				t.Errorf("credit memo item = %+v", cm)
			}
		})
	}
}

// A value in neither form is a permanent error naming its line and field.
func TestBillingPreviewBadValue(t *testing.T) {
	t.Parallel()
	line := `{"id":"i0","subscriptionNumber":"A-S1","serviceStartDate":"2017-05-01","chargeAmount":1,"chargeNumber":"C-1"}`
	tests := []struct {
		name, body, field string
	}{
		{"amount with a comma", `{"invoiceItems":[` + line + `,{"id":"i1","chargeAmount":"12,99","chargeNumber":"C-1"}]}`, "invoiceItems[1].chargeAmount"},
		{"amount as a boolean", `{"invoiceItems":[{"taxAmount":true}]}`, "invoiceItems[0].taxAmount"},
		{"charge date", `{"invoiceItems":[{"chargeAmount":1,"chargeDate":"06/01/2017"}]}`, "invoiceItems[0].chargeDate"},
		{"credit amount", `{"invoiceItems":[],"creditMemoItems":[{"amountWithoutTax":"fifty"}]}`, "creditMemoItems[0].amountWithoutTax"},
		{"items not a list", `{"invoiceItems":{"chargeAmount":1}}`, "invoiceItems"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c := setup(t, nil)
			offContract(t, "/v1/operations/billing-preview", "a value of neither form, on purpose")
			srv.AddFault(sandbox.Fault{Path: "/v1/operations/billing-preview", Status: http.StatusOK, Body: tt.body})
			_, err := c.BillingPreview(context.Background(), zuora.BillingPreviewRequest{AccountNumber: "A00000101", TargetDate: "2017-06-01"})
			e := apiError(t, err)
			if e.Kind != upstream.Permanent || !strings.Contains(err.Error(), "field "+tt.field+":") {
				t.Errorf("err = %v (kind %s); want permanent, naming %s", err, e.Kind, tt.field)
			}
		})
	}
	// Not JSON at all (a proxy's page) stays retryable, as before.
	srv, c := setup(t, nil)
	offContract(t, "/v1/operations/billing-preview", "a proxy's page, on purpose")
	srv.AddFault(sandbox.Fault{Path: "/v1/operations/billing-preview", Status: http.StatusOK, Body: "<html>bad gateway</html>"})
	_, err := c.BillingPreview(context.Background(), zuora.BillingPreviewRequest{AccountNumber: "A00000101", TargetDate: "2017-06-01"})
	if e := apiError(t, err); e.Kind != upstream.Retryable {
		t.Errorf("non-JSON answer: kind %s; want retryable", e.Kind)
	}
}

// chargeDate in every form it is read in; written in the example's form.
func TestPreviewTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2017, 1, 6, 16, 38, 26, 0, time.UTC)
	for give, want := range map[string]time.Time{
		`"2017-01-06 16:38:26"`:           at,
		`"2017-01-06T16:38:26Z"`:          at,
		`"2017-01-06T17:38:26.000+01:00"`: at,
		`"2017-01-06T16:38:26"`:           at,
		`"2017-01-06"`:                    time.Date(2017, 1, 6, 0, 0, 0, 0, time.UTC),
		`""`:                              {},
		`null`:                            {},
	} {
		var got zuora.PreviewTime
		if err := json.Unmarshal([]byte(give), &got); err != nil || !got.Equal(want) {
			t.Errorf("decode %s = %v, %v; want %v", give, got.Time, err, want)
		}
	}
	for _, bad := range []string{`"06/01/2017"`, `"tomorrow"`, `20170106`, `true`} {
		var got zuora.PreviewTime
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("decode %s = %v; want an error", bad, got.Time)
		}
	}
	if b, err := json.Marshal(zuora.PreviewTime{Time: at}); err != nil || string(b) != `"2017-01-06 16:38:26"` {
		t.Errorf("encode = %s, %v; want the example's form", b, err)
	}
	var bp zuora.BillingPreview
	if err := json.Unmarshal([]byte(`{"success":"true","invoiceItems":[]}`), &bp); err != nil || !bp.Success {
		t.Errorf(`success "true" = %v, %v; want true`, bp.Success, err)
	}
}
