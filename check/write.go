package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"

	"github.com/zsync/zsync/internal/clip"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
)

// volatile are the envelope fields Limio may stamp on any write.
var volatile = map[string]bool{"updated": true, "sort_key": true}

// writeChecks write to the operator's test subscription subID only: a
// partial update of an unchanged value, a status written and restored, and a
// scratch schedule entry created by PUT and then cancelled.
func (r *runner) writeChecks(ctx context.Context, lc *limio.Client, subID string) {
	m := r.rec.mark()
	sub, err := lc.GetSubscription(ctx, subID)
	if err != nil {
		r.add(errResult(Result{ID: "limio.write_target", Assumption: "the test subscription named by --write exists"},
			r.rec.last(m, http.MethodGet, "/subscriptions/"), err, true))
		return
	}
	r.partialUpdate(ctx, lc, subID)
	r.putStatus(ctx, lc, sub)
	r.putCreates(ctx, lc, sub)
}

// partialUpdate rewrites one field with its own value and compares the
// whole object before and after: a PUT must merge into data, not replace it.
func (r *runner) partialUpdate(ctx context.Context, lc *limio.Client, subID string) {
	res := Result{ID: "limio.partial_update", Assumption: "a PUT of some data fields leaves the others (partial update)"}
	before, err := lc.GetObject(ctx, limio.PathSubscriptions, subID)
	if err != nil {
		r.add(errResult(res, nil, err, false))
		return
	}
	data, _ := before["data"].(map[string]any)
	field, value := "", any(nil)
	for _, f := range []string{"termStartDate", "name", "termEndDate"} {
		if v, ok := data[f]; ok && v != nil {
			field, value = "data."+f, v
			break
		}
	}
	if field == "" {
		res.Status, res.Evidence = Unknown, subID+" has none of data.termStartDate, data.name, data.termEndDate to rewrite"
		r.add(res)
		return
	}
	var p limio.Patch
	p.Set(field, value)
	m := r.rec.mark()
	err = lc.Update(ctx, limio.PathSubscriptions, subID, p)
	put := r.rec.last(m, http.MethodPut, "/subscriptions/")
	res.Touched = fmt.Sprintf("subscription %s: %s rewritten with its own value %v", subID, field, value)
	if err != nil {
		r.add(errResult(res, put, err, true))
		return
	}
	after, err := lc.GetObject(ctx, limio.PathSubscriptions, subID)
	if err != nil {
		r.add(errResult(res.from(put), put, err, false))
		return
	}
	res = res.from(put)
	if diff := diffObjects(before, after); len(diff) > 0 {
		res.Status = Fail
		res.Evidence = "read back, the subscription changed: " + strings.Join(diff, "; ")
		res.Fix = "zsync writes only the fields that differ: on this tenant a PUT loses the rest; ask Limio before syncing"
	} else {
		res.Status = Pass
		res.Evidence = fmt.Sprintf("read back unchanged: %d data field(s) kept", len(data))
	}
	r.add(res)
}

// diffObjects lists what differs between two reads, volatile stamps aside.
func diffObjects(a, b map[string]any) []string {
	var out []string
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if volatile[k] {
			continue
		}
		am, aok := a[k].(map[string]any)
		bm, bok := b[k].(map[string]any)
		if aok && bok {
			for _, d := range diffObjects(am, bm) {
				out = append(out, k+"."+d)
			}
			continue
		}
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, fmt.Sprintf("%s %s → %s", k, show(a[k]), show(b[k])))
		}
	}
	return out
}

func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return clip.Line(string(b), 60)
}

// putStatus writes another status, reads it back, and restores the original.
// When the configured place doesn't take it, the other place is tried, so the
// failure names the setting that works.
func (r *runner) putStatus(ctx context.Context, lc *limio.Client, sub *limio.Subscription) {
	d := lc.Dialect()
	res := Result{ID: "limio." + limio.AssumptionPutStatus,
		Assumption: "a PUT with the status at " + d.StatusField + " changes the status (limio.status_field)"}
	orig := sub.Status
	want := limio.StatusPending
	if orig == limio.StatusPending {
		want = limio.StatusActive
	}
	m := r.rec.mark()
	got, err := writeStatus(ctx, lc, limio.PathSubscriptions, sub.ID, want)
	put := r.rec.last(m, http.MethodPut, "/subscriptions/")
	touched := []string{fmt.Sprintf("subscription %s: status %q → %q at %s", sub.ID, orig, want, d.StatusField)}
	restore := func(c *limio.Client, where string) {
		if orig == "" || got == orig {
			return
		}
		if back, err := writeStatus(ctx, c, limio.PathSubscriptions, sub.ID, orig); err != nil || back != orig {
			touched = append(touched, fmt.Sprintf("restoring %q at %s FAILED (reads %q, %v): restore it by hand", orig, where, back, err))
		} else {
			touched = append(touched, fmt.Sprintf("restored %q at %s", orig, where))
		}
	}
	res = res.from(put)
	switch {
	case err != nil:
		res = errResult(res, put, err, true)
	case got == want:
		res.Status, res.Evidence = Pass, fmt.Sprintf("read back status %q after writing %q", got, want)
		restore(lc, d.StatusField)
	default:
		res.Status = Fail
		res.Evidence = fmt.Sprintf("Limio answered %d, yet the status reads back %q after writing %q", res.HTTPStatus, got, want)
		alt := d
		alt.StatusField = otherStatusField(d.StatusField)
		if ac, aerr := r.limioClient(alt); aerr == nil {
			if g, err := writeStatus(ctx, ac, limio.PathSubscriptions, sub.ID, want); err == nil && g == want {
				res.Evidence += "; written at " + alt.StatusField + " it reads back " + fmt.Sprintf("%q", g)
				res.Fix = "set limio.status_field=" + alt.StatusField
				touched = append(touched, fmt.Sprintf("status %q written at %s", want, alt.StatusField))
				got = g
				restore(ac, alt.StatusField)
			} else {
				res.Fix = "neither status nor data.status takes: zsync can't change a Limio status on this tenant; ask Limio"
			}
		}
	}
	res.Touched = strings.Join(touched, "; ")
	r.add(res)
}

// writeStatus writes status and returns it as read back.
func writeStatus(ctx context.Context, lc *limio.Client, pathType, id, status string) (string, error) {
	var p limio.Patch
	p.Set(limio.FieldStatus, status)
	if err := lc.Update(ctx, pathType, id, p); err != nil {
		return "", err
	}
	if pathType == limio.PathSchedules {
		s, err := lc.GetSchedule(ctx, id)
		if err != nil {
			return "", err
		}
		return s.Status, nil
	}
	s, err := lc.GetSubscription(ctx, id)
	if err != nil {
		return "", err
	}
	return s.Status, nil
}

// putCreates creates a scratch schedule entry by PUT to a new id, reads it
// back by id and among the subscription's entries, then cancels it (Limio
// has no delete for schedules).
func (r *runner) putCreates(ctx context.Context, lc *limio.Client, sub *limio.Subscription) {
	now := r.cfg.Now().UTC()
	ref := "zsync-check:" + now.Format("20060102T150405.000000000")
	id := limio.NewID("schedule", sub.ID, ref)
	currency := "USD"
	if rel, err := lc.GetRelated(ctx, sub.ID); err == nil && len(rel.Schedules) > 0 && rel.Schedules[0].Data.Currency != "" {
		currency = rel.Schedules[0].Data.Currency
	}
	entry := limio.Schedule{
		Envelope: limio.Envelope{ID: id, RecordType: limio.RecordSchedule, Status: limio.SchedulePending, Related: sub.ID, Owner: sub.Owner},
		Data: limio.ScheduleData{Date: "2099-12-31", Amount: "0.00", Currency: currency,
			Description: "zsync check scratch entry (cancelled by the check)", Reference: ref, Type: "payment"},
	}
	res := Result{ID: "limio." + limio.AssumptionPutCreates, Assumption: "a PUT of a full object to a new id creates it"}
	res.Touched = fmt.Sprintf("schedule entry %s (reference %s, related %s, 0.00 on 2099-12-31)", id, ref, sub.ID)
	m := r.rec.mark()
	err := lc.Create(ctx, limio.PathSchedules, id, entry)
	put := r.rec.last(m, http.MethodPut, "/schedules/")
	listed := Result{ID: "limio." + limio.AssumptionRelatedSchedules + ".scratch",
		Assumption: "a created schedule entry is among the subscription's entries where a sync reads them (limio.schedules_from)"}
	cancel := Result{ID: "limio." + limio.AssumptionPutStatus + ".scratch_cancel",
		Assumption: "a schedule entry's status write (cancel) is read back"}
	// Without an entry, the checks that read it back can't say anything.
	noEntry := func() {
		listed.Status, listed.Evidence = Unknown, "nothing was created"
		cancel.Status, cancel.Evidence = Unknown, "nothing was created, nothing to cancel"
		r.add(listed)
		r.add(cancel)
	}
	if err != nil {
		res = errResult(res, put, err, true)
		res.Touched = "nothing created (" + id + " refused)"
		if limio.AssumptionOf(err) == limio.AssumptionPutCreates {
			res.Fix = "no documented alternative: zsync can't create subscriptions, customers, addresses or schedule entries here; syncs that need one fail naming put_creates; ask Limio for a create API"
		}
		r.add(res)
		noEntry()
		return
	}
	res = res.from(put)
	m = r.rec.mark()
	got, gerr := lc.GetSchedule(ctx, id)
	get := r.rec.last(m, http.MethodGet, "/schedules/")
	switch {
	case errors.Is(gerr, upstream.ErrNotFound):
		res.Status = Fail
		res.Evidence = fmt.Sprintf("the PUT answered %d, yet GET %s answers 404: Limio took the create and dropped it", res.HTTPStatus, get.path)
		res.Fix = "no documented alternative: ask Limio for a create API before syncing"
		r.add(res)
		noEntry()
		return
	case gerr != nil:
		res = errResult(res, get, gerr, false)
	default:
		res.Status, res.Evidence = Pass, fmt.Sprintf("read back by id: reference %q, status %q", got.Data.Reference, got.Status)
	}
	r.add(res)

	m = r.rec.mark()
	rel, rerr := lc.GetRelated(ctx, sub.ID)
	listed = listed.from(r.rec.last(m, http.MethodGet, ""))
	switch {
	case rerr != nil:
		listed = errResult(listed, r.rec.last(m, http.MethodGet, ""), rerr, false)
	case hasSchedule(rel, id):
		listed.Status, listed.Evidence = Pass, fmt.Sprintf("%s is among %d entr(ies) read from %s", id, len(rel.Schedules), lc.Dialect().SchedulesFrom)
	default:
		listed.Status = Fail
		listed.Evidence = fmt.Sprintf("%s exists, but is not among the %d entr(ies) read from %s", id, len(rel.Schedules), lc.Dialect().SchedulesFrom)
		listed.Fix = "set limio.schedules_from=list"
		if lc.Dialect().SchedulesFrom == limio.SchedulesList {
			listed.Fix = "the schedules listing doesn't attribute the entry to its subscription: ask Limio where a subscription's entries are"
		}
	}
	r.add(listed)

	m = r.rec.mark()
	st, cerr := writeStatus(ctx, lc, limio.PathSchedules, id, limio.ScheduleCancelled)
	cancel = cancel.from(r.rec.last(m, http.MethodPut, "/schedules/"))
	cancel.Touched = "schedule entry " + id + ": status → cancelled"
	switch {
	case cerr != nil:
		cancel = errResult(cancel, r.rec.last(m, "", "/schedules/"), cerr, true)
	case st == limio.ScheduleCancelled:
		cancel.Status, cancel.Evidence = Pass, "read back status \"cancelled\""
	default:
		cancel.Status = Fail
		cancel.Evidence = fmt.Sprintf("read back status %q after writing \"cancelled\"", st)
		cancel.Fix = "see limio.put_status; cancel " + id + " by hand"
		alt := lc.Dialect()
		alt.StatusField = otherStatusField(alt.StatusField)
		if ac, err := r.limioClient(alt); err == nil {
			if st, err := writeStatus(ctx, ac, limio.PathSchedules, id, limio.ScheduleCancelled); err == nil && st == limio.ScheduleCancelled {
				cancel.Evidence += "; written at " + alt.StatusField + " it reads back \"cancelled\""
				cancel.Touched += " (at " + alt.StatusField + ")"
				cancel.Fix = "set limio.status_field=" + alt.StatusField
			}
		}
	}
	r.add(cancel)
}

func hasSchedule(rel *limio.Related, id string) bool {
	for _, s := range rel.Schedules {
		if s.ID == id {
			return true
		}
	}
	return false
}

func otherStatusField(f string) string {
	if f == limio.StatusInData {
		return limio.StatusTopLevel
	}
	return limio.StatusInData
}
