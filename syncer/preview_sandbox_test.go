package syncer

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// The billing preview's forms, end to end: the Zuora sandbox computes the
// preview, the client reads it, Plan nets it, Limio gets the schedule.

// schedule lists the subscription's entries from `from` on as
// "reference status amount".
func (sb *sandboxes) schedule(subID, from string) []string {
	var out []string
	for _, e := range sb.ls.Schedules(subID) {
		if day(e.Data.Date) >= from {
			out = append(out, e.Data.Reference+" "+e.Status+" "+e.Data.Amount)
		}
	}
	slices.Sort(out)
	return out
}

// A 12.99 monthly charge, a 10% discount on recurring charges and a one-time
// goodwill credit of 3.00 in December, in every form the preview comes in:
// one entry a month, 12.99 - 1.30 = 11.69, December 8.69. The entry earlier
// zsync versions made for the discount line is cancelled; a re-run changes
// nothing.
func TestSandboxPreviewForms(t *testing.T) {
	t.Parallel()
	forms := []struct {
		name string
		form zuoratest.PreviewForm
	}{
		{"published", zuoratest.PreviewForm{}},
		{"negative discounts", zuoratest.PreviewForm{NegativeDiscounts: true}},
		{"invoice settlement", zuoratest.PreviewForm{InvoiceSettlement: true}},
		{"negative discounts with invoice settlement", zuoratest.PreviewForm{NegativeDiscounts: true, InvoiceSettlement: true}},
	}
	for _, tt := range forms {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := loadCase(t, "in_sync")
			rp := &fx.z.Subscription.RatePlans[0]
			fee := &rp.RatePlanCharges[0]
			fee.Price = zuora.NewAmount("12.99")
			rp.RatePlanCharges = append(rp.RatePlanCharges,
				zuora.Charge{ID: "ch-disc", Number: "C-00000103", Name: "Loyalty 10% Off", Type: "Recurring", Model: "DiscountPercentage",
					DiscountPercentage: zuora.NewAmount("10"), ApplyDiscountTo: "RECURRING", BillingPeriod: "Month",
					EffectiveStartDate: fee.EffectiveStartDate, EffectiveEndDate: fee.EffectiveEndDate, ChargedThroughDate: fee.ChargedThroughDate},
				zuora.Charge{ID: "ch-credit", Number: "C-00000104", Name: "Goodwill Credit", Type: "OneTime", Model: "FlatFee",
					Price: zuora.NewAmount("-3.00"), Quantity: zuora.NewAmount("1"), EffectiveStartDate: "2026-12-01", EffectiveEndDate: "2026-12-02"})
			subID := fx.limio.Subscription.ID
			fx.limio.Schedules = append(fx.limio.Schedules, limio.Schedule{
				Envelope: limio.Envelope{ID: limio.NewID("schedule", subID, "C-00000103:2026-12-01"), RecordType: limio.RecordSchedule,
					Status: limio.SchedulePending, Related: subID},
				Data: limio.ScheduleData{Date: "2026-12-01", Amount: "-1.30", Currency: "USD", Description: "Loyalty 10% Off",
					Reference: "C-00000103:2026-12-01", Type: "payment"}})
			sb := newSandboxesFor(t, fx)
			sb.zs.SetPreviewForm(tt.form)

			out, err := sb.s.Sync(t.Context(), number, manual)
			if err != nil || out.Result != Updated {
				t.Fatalf("Sync = %s, %v; want updated", out.Result, err)
			}
			want := []string{
				"C-00000101:2026-12-01 pending 8.69",
				"C-00000101:2027-01-01 pending 11.69",
				"C-00000101:2027-02-01 pending 11.69",
				"C-00000103:2026-12-01 cancelled -1.30",
			}
			if got := sb.schedule(subID, "2026-12-01"); !slices.Equal(got, want) {
				t.Errorf("schedule:\n%v\nwant:\n%v", got, want)
			}
			writes := sb.limioWrites()
			again, err := sb.s.Sync(t.Context(), number, manual)
			if err != nil || again.Result != Unchanged || sb.limioWrites() != writes {
				t.Errorf("re-run = %s %v, %v, %d writes; want unchanged, none", again.Result, again.Changes, err, sb.limioWrites()-writes)
			}
		})
	}
}

// specPreviewExample is the 200 example of POST /v1/operations/billing-preview
// in Zuora's published OpenAPI, as JSON.
func specPreviewExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../internal/zuoraspec/specs/zuora-operations-api-openapi.yml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Examples map[string]any `yaml:"examples"`
			} `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	ex, ok := spec.Paths["/v1/operations/billing-preview"]["post"].Responses["200"].Examples["application/json"]
	if !ok {
		t.Fatal("the spec has no 200 example for POST /v1/operations/billing-preview")
	}
	out, err := json.Marshal(ex)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Zuora's published example, served as is: a 100 charge with a positive 10
// discount linked to it, a 50 credit memo item with a 5 discount linked to
// it. The customer pays 90 - 45 = 45.00 for May: one entry, the charge's.
func TestSandboxPublishedPreviewExample(t *testing.T) {
	t.Parallel()
	example := specPreviewExample(t)
	fx := loadCase(t, "limio_unknown")
	zs := fx.z.Subscription
	zs.SubscriptionNumber, zs.ID = "A-S00000001", "402890b75972406c0159724e2e810029"
	zs.SubscriptionStartDate, zs.TermStartDate, zs.TermEndDate = "2017-01-01", "2017-01-01", "2018-01-01"
	fx.now = time.Date(2017, 4, 20, 9, 0, 0, 0, time.UTC)
	sb := newSandboxesFor(t, fx)
	sb.zs.AddFault(sandbox.Fault{Method: http.MethodPost, Path: "/v1/operations/billing-preview", Status: http.StatusOK, Body: example})

	out, err := sb.s.Sync(t.Context(), "A-S00000001", manual)
	if err != nil || out.Result != Created {
		t.Fatalf("Sync = %+v, %v; want created", out, err)
	}
	var got []string
	for _, e := range sb.ls.Schedules(out.LimioID) {
		got = append(got, strings.Join([]string{e.Data.Reference, e.Status, e.Data.Date, e.Data.Amount, e.Data.Currency, e.Data.Description}, " "))
	}
	want := []string{"C-00000001:2017-05-01 pending 2017-05-01 45.00 USD positive-charge"}
	if !slices.Equal(got, want) {
		t.Errorf("schedule = %v; want %v", got, want)
	}
}

// A preview line whose amount is in neither form fails the sync permanently,
// naming the line and field, before anything is written to Limio.
func TestSandboxPreviewBadAmount(t *testing.T) {
	t.Parallel()
	sb := newSandboxes(t, "in_sync")
	subID := sb.fx.limio.Subscription.ID
	before := sb.state(t, subID)
	sb.zs.AddFault(sandbox.Fault{Method: http.MethodPost, Path: "/v1/operations/billing-preview", Status: http.StatusOK,
		Body: `{"success":true,"invoiceItems":[
			{"id":"a","subscriptionNumber":"A-S00000271","serviceStartDate":"2026-12-01","chargeAmount":12.99,"chargeNumber":"C-00000101","processingType":"Charge"},
			{"id":"d","subscriptionNumber":"A-S00000271","serviceStartDate":"2026-12-01","chargeAmount":"2,00","chargeNumber":"C-00000103","processingType":"Discount","appliedToItemId":"a"}]}`})
	out, err := sb.s.Sync(t.Context(), number, manual)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Kind != upstream.Permanent || upstream.IsRetryable(err) {
		t.Fatalf("Sync error = %v; want a permanent upstream error", err)
	}
	if !strings.Contains(err.Error(), "invoiceItems[1].chargeAmount") {
		t.Errorf("error %q does not name invoiceItems[1].chargeAmount", err)
	}
	if out.Result != "" {
		t.Errorf("Result = %s; want none (the worker records failed)", out.Result)
	}
	if n := sb.limioWrites(); n != 0 {
		t.Errorf("%d Limio writes; want 0", n)
	}
	if after := sb.state(t, subID); after != before {
		t.Errorf("Limio changed:\n%s\nwas\n%s", after, before)
	}
}
