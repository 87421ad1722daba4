package limio_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
)

func TestDialectValidate(t *testing.T) {
	t.Parallel()
	if err := (limio.Dialect{}).Validate(); err != nil {
		t.Errorf("zero dialect: %v", err)
	}
	for d, key := range map[limio.Dialect]string{
		{StatusField: "data.state"}: "limio.status_field",
		{RelatedPath: "related"}:    "limio.related_path",
		{SchedulesFrom: "events"}:   "limio.schedules_from",
		{Lookup: "everything"}:      "limio.lookup",
	} {
		err := d.Validate()
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%+v: %v; want an error naming %s", d, err, key)
		}
		if _, err := limio.New(limio.Config{BaseURL: "http://x", ClientID: "a", ClientSecret: "b"}, limio.WithDialect(d)); err == nil {
			t.Errorf("New accepted %+v", d)
		}
	}
}

// With status_field data.status, a status write goes under data (an update
// and a create alike) and reads come back from there, while an object
// without data.status still reads its top-level status.
func TestStatusInData(t *testing.T) {
	t.Parallel()
	b := setup(t, limio.WithDialect(limio.Dialect{StatusField: limio.StatusInData}))
	b.srv.SetBehaviour(limiotest.Behaviour{PutCreates: true, RelatedSchedules: true, SummaryZuora: true})
	ctx := t.Context()
	s, err := b.client.GetSubscription(ctx, seedSub)
	if err != nil || s.Status != "active" {
		t.Fatalf("before: %+v, %v; want the top-level active", s, err)
	}
	var p limio.Patch
	p.Set(limio.FieldStatus, limio.StatusCancelled)
	if err := b.client.Update(ctx, limio.PathSubscriptions, seedSub, p); err != nil {
		t.Fatal(err)
	}
	sent := b.bodies.get("PUT /api/objects/limio/subscriptions/" + seedSub)
	if len(sent) != 1 || sent[0] != `{"data":{"status":"cancelled"}}` {
		t.Errorf("PUT body %q; want status under data only", sent)
	}
	if s, err = b.client.GetSubscription(ctx, seedSub); err != nil || s.Status != limio.StatusCancelled {
		t.Errorf("after: %q, %v; want cancelled from data.status", s.Status, err)
	}
	entry := limio.Schedule{Envelope: limio.Envelope{ID: "schedule-new", RecordType: limio.RecordSchedule, Status: limio.SchedulePending, Related: seedSub},
		Data: limio.ScheduleData{Date: "2099-01-01", Amount: "0.00", Currency: "GBP", Reference: "x:2099-01-01", Type: "payment"}}
	if err := b.client.Create(ctx, limio.PathSchedules, "schedule-new", entry); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.Unmarshal([]byte(b.bodies.get("PUT /api/objects/limio/schedules/schedule-new")[0]), &body)
	if _, top := body["status"]; top || body["data"].(map[string]any)["status"] != "pending" {
		t.Errorf("create body %v; want status under data only", body)
	}
	got, err := b.client.GetSchedule(ctx, "schedule-new")
	if err != nil || got.Status != limio.SchedulePending {
		t.Errorf("created entry: %+v, %v", got, err)
	}
}

// A PUT-create answered 404 is the assumption failing, permanent, with the
// 404 still in the chain; not an object that is missing.
func TestCreate404NamesTheAssumption(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.SetBehaviour(limiotest.Behaviour{PutStatus: true, RelatedSchedules: true, SummaryZuora: true})
	err := b.client.Create(t.Context(), limio.PathCustomers, "cus-new", limio.Customer{
		Envelope: limio.Envelope{ID: "cus-new", RecordType: limio.RecordCustomer}, Data: limio.CustomerData{Name: "x"}})
	if limio.AssumptionOf(err) != limio.AssumptionPutCreates || kindOf(t, err) != upstream.Permanent || !errors.Is(err, upstream.ErrNotFound) {
		t.Fatalf("Create = %v (assumption %q); want put_creates, permanent, the 404 kept", err, limio.AssumptionOf(err))
	}
	if !strings.Contains(err.Error(), "put_creates") {
		t.Errorf("message %q does not name the assumption", err)
	}
}

// schedules_from list reads a subscription's entries from the schedules
// listing when /related has none; summaries without related fail loudly.
func TestSchedulesFromList(t *testing.T) {
	t.Parallel()
	b := setup(t, limio.WithDialect(limio.Dialect{SchedulesFrom: limio.SchedulesList}))
	b.srv.SetBehaviour(limiotest.Behaviour{PutCreates: true, PutStatus: true, SummaryZuora: true})
	rel, err := b.client.GetRelated(t.Context(), seedSub)
	if err != nil || len(rel.Schedules) != 3 || rel.Schedules[0].Data.Reference == "" || len(rel.Addresses) != 2 {
		t.Fatalf("GetRelated = %+v, %v; want the 3 seeded entries in full and the addresses", rel, err)
	}
	if err := b.srv.Put(limio.PathSchedules, map[string]any{"id": "schedule-orphan", "data": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	_, err = b.client.GetRelated(t.Context(), seedSub)
	if limio.AssumptionOf(err) != limio.AssumptionRelatedSchedules || kindOf(t, err) != upstream.Permanent {
		t.Errorf("with an entry without related: %v; want related_schedules, permanent", err)
	}
	other := setup(t, limio.WithDialect(limio.Dialect{RelatedPath: limio.RelatedPlural}))
	if _, err := other.client.GetRelated(t.Context(), seedSub); err != nil {
		t.Errorf("plural related path: %v", err)
	}
	if n := len(other.bodies.get("GET /api/objects/limio/subscriptions/" + seedSub + "/related")); n != 1 {
		t.Errorf("plural path asked %d times", n)
	}
}

// A scan whose summaries carry neither reference nor data.zuora can't say
// a key is unknown: an assumption error, not "not found". lookup full reads
// each subscription and finds it.
func TestScanWithBareSummaries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.SetBehaviour(limiotest.Behaviour{PutCreates: true, PutStatus: true, RelatedSchedules: true})
	_, err := b.client.Resolve(t.Context(), seedZuora)
	if limio.AssumptionOf(err) != limio.AssumptionSummaryZuora || errors.Is(err, upstream.ErrNotFound) {
		t.Fatalf("Resolve = %v; want summary_zuora, not not-found", err)
	}
	full := setup(t, limio.WithDialect(limio.Dialect{Lookup: limio.LookupFull}))
	full.srv.SetBehaviour(limiotest.Behaviour{PutCreates: true, PutStatus: true, RelatedSchedules: true})
	s, err := full.client.Resolve(t.Context(), seedZuora)
	if err != nil || s.ID != seedSub {
		t.Fatalf("lookup full: %v, %v", s, err)
	}
	_, err = full.client.Resolve(t.Context(), "A-S09999999")
	if !errors.Is(err, upstream.ErrNotFound) {
		t.Errorf("lookup full, unknown key: %v; want not found", err)
	}
	if n := full.srv.Count(http.MethodGet, "/api/objects/limio/subscriptions/"); n < 2 {
		t.Errorf("lookup full read %d subscriptions in full", n)
	}
}
