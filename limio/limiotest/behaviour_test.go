package limiotest_test

import (
	"net/http"
	"testing"

	"github.com/zsync/zsync/limio/limiotest"
)

// PUT /sandbox/behaviour switches the named assumptions (others stay), GET
// shows them, bad input is refused without changing anything, and reset
// restores zsync's assumptions.
func TestBehaviourEndpoint(t *testing.T) {
	t.Parallel()
	h := start(t)
	st, got := h.do(t, http.MethodGet, "/sandbox/behaviour", "", false)
	if st != 200 || got["put_creates"] != true || got["put_status"] != true || got["related_schedules"] != true || got["summary_zuora"] != true {
		t.Fatalf("default behaviour %d %v; want all true", st, got)
	}
	if st, _ := h.do(t, http.MethodPut, "/sandbox/behaviour", `{"put_status":false}`, false); st != 200 {
		t.Fatalf("PUT: %d", st)
	}
	if b := h.srv.CurrentBehaviour(); b.PutStatus || !b.PutCreates || !b.RelatedSchedules || !b.SummaryZuora {
		t.Fatalf("after PUT put_status=false: %+v", b)
	}
	for _, bad := range []string{`{"put_statuz":false}`, `{"put_creates":"no"}`, `[true]`} {
		if st, _ := h.do(t, http.MethodPut, "/sandbox/behaviour", bad, false); st != 400 {
			t.Errorf("PUT %s: %d; want 400", bad, st)
		}
	}
	if b := h.srv.CurrentBehaviour(); b.PutStatus || !b.PutCreates {
		t.Errorf("a refused PUT changed the behaviour: %+v", b)
	}
	if st, _ := h.do(t, http.MethodPost, "/sandbox/reset", "", false); st != 200 && st != 204 {
		t.Fatalf("reset: %d", st)
	}
	if b := h.srv.CurrentBehaviour(); b != limiotest.DefaultBehaviour() {
		t.Errorf("after reset: %+v", b)
	}
}

// Each switch turns its assumption false, and only that.
func TestBehaviourSwitches(t *testing.T) {
	t.Parallel()
	sub := "/api/objects/limio/subscriptions/" + seedSub
	newSched := "/api/objects/limio/schedules/schedule-new"
	create := `{"record_type":"schedule","related":"` + seedSub + `","status":"pending","data":{"date":"2099-01-01","amount":"0.00"}}`
	t.Run("put_creates", func(t *testing.T) {
		t.Parallel()
		h := start(t)
		h.srv.SetBehaviour(limiotest.Behaviour{PutStatus: true, RelatedSchedules: true, SummaryZuora: true})
		if st, _ := h.do(t, http.MethodPut, newSched, create, true); st != 404 {
			t.Errorf("create with put_creates off: %d; want 404", st)
		}
		if st, _ := h.do(t, http.MethodPut, sub, `{"data":{"name":"x"}}`, true); st != 200 {
			t.Errorf("update with put_creates off: %d; want 200", st)
		}
	})
	t.Run("put_status", func(t *testing.T) {
		t.Parallel()
		h := start(t)
		h.srv.SetBehaviour(limiotest.Behaviour{PutCreates: true, RelatedSchedules: true, SummaryZuora: true})
		if st, _ := h.do(t, http.MethodPut, sub, `{"status":"cancelled","data":{"status":"cancelled"}}`, true); st != 200 {
			t.Fatalf("PUT: %d", st)
		}
		_, obj := h.do(t, http.MethodGet, sub, "", true)
		if obj["status"] == "cancelled" || obj["data"].(map[string]any)["status"] != "cancelled" {
			t.Errorf("put_status off: status %v, data.status %v; want the top level ignored, data kept", obj["status"], obj["data"].(map[string]any)["status"])
		}
	})
	t.Run("related_schedules", func(t *testing.T) {
		t.Parallel()
		h := start(t)
		_, before := h.do(t, http.MethodGet, "/api/objects/limio/subscription/"+seedSub+"/related", "", true)
		h.srv.SetBehaviour(limiotest.Behaviour{PutCreates: true, PutStatus: true, SummaryZuora: true})
		_, after := h.do(t, http.MethodGet, "/api/objects/limio/subscription/"+seedSub+"/related", "", true)
		count := func(m map[string]any) (sched, other int) {
			for _, it := range m["items"].([]any) {
				if it.(map[string]any)["record_type"] == "schedule" {
					sched++
				} else {
					other++
				}
			}
			return
		}
		bs, bo := count(before)
		as, ao := count(after)
		if bs == 0 || as != 0 || ao != bo {
			t.Errorf("schedules %d → %d, others %d → %d; want schedules gone, the rest kept", bs, as, bo, ao)
		}
	})
	t.Run("summary_zuora", func(t *testing.T) {
		t.Parallel()
		h := start(t)
		h.srv.SetBehaviour(limiotest.Behaviour{PutCreates: true, PutStatus: true, RelatedSchedules: true})
		_, list := h.do(t, http.MethodGet, "/api/objects/limio/subscriptions", "", true)
		for _, it := range list["items"].([]any) {
			for k := range it.(map[string]any) {
				if k != "id" && k != "name" && k != "status" {
					t.Errorf("summary carries %s with summary_zuora off", k)
				}
			}
		}
	})
}
