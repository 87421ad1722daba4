package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
)

// summaryPage is how many subscription summaries the summary check reads.
const summaryPage = 20

// schedulePages bounds the schedules listing a read-only check scans for a
// subscription's entries (100 a page).
const schedulePages = 10

func (r *runner) limioChecks(ctx context.Context, lc *limio.Client) {
	d := lc.Dialect()
	m := r.rec.mark()
	items, _, lerr := lc.ListSubscriptions(ctx, "", summaryPage)
	if !r.tokenResult("limio.token", "the API client gets a token from POST /oauth2/token", r.rec.last(m, http.MethodPost, "/oauth2/token")) {
		return
	}
	list := r.rec.last(m, http.MethodGet, "/api/objects/limio/subscriptions")
	r.add(summaryResult(d, list, items, lerr))

	// The subscription the read checks look at: the one --subscription names
	// (found the way a sync finds it), else the first listed.
	var sub *limio.Subscription
	if r.cfg.Subscription != "" {
		sub = r.lookup(ctx, lc, r.cfg.Subscription)
	} else if len(items) > 0 {
		sub = r.byID(ctx, lc, items[0].ID)
		if sub != nil {
			key := sub.Reference
			if sub.Data.Zuora != nil && sub.Data.Zuora.SubscriptionNumber != "" {
				key = sub.Data.Zuora.SubscriptionNumber
			}
			if key != "" {
				r.lookup(ctx, lc, key)
			}
		}
	}
	if sub == nil {
		r.add(Result{ID: "limio.related_path", Assumption: "the related objects are at /api/objects/limio/" + d.RelatedPath + "/{id}/related",
			Status: Unknown, Evidence: "no subscription to ask about (pass --subscription A-S… of a subscription Limio knows)"})
		return
	}
	types := r.relatedPath(ctx, lc, d, sub.ID)
	if types != nil {
		r.relatedSchedules(ctx, lc, d, sub.ID, types)
	}
	if r.cfg.Write != "" {
		r.writeChecks(ctx, lc, r.cfg.Write)
	}
}

// summaryResult: the index's scan matches summaries on reference and
// data.zuora; a listing whose summaries carry neither can't find anything.
func summaryResult(d limio.Dialect, ex *exchange, items []limio.Subscription, err error) Result {
	res := Result{ID: "limio." + limio.AssumptionSummaryZuora,
		Assumption: "subscription list summaries carry reference or data.zuora (the index's scan matches on them)"}.from(ex)
	if err != nil {
		return errResult(res, ex, err, true)
	}
	var raw struct {
		Items []map[string]any `json:"items"`
	}
	if ex != nil {
		_ = json.Unmarshal(ex.body, &raw)
	}
	keys := map[string]bool{}
	for _, it := range raw.Items {
		for k, v := range it {
			keys[k] = true
			if dm, ok := v.(map[string]any); ok && k == "data" {
				for dk := range dm {
					keys["data."+dk] = true
				}
			}
		}
	}
	ref, zu := 0, 0
	for _, it := range items {
		if it.Reference != "" {
			ref++
		}
		if it.Data.Zuora != nil {
			zu++
		}
	}
	carried := sortedKeys(keys)
	switch {
	case len(items) == 0:
		res.Status, res.Evidence = Unknown, "the listing is empty"
	case d.Lookup == limio.LookupFull:
		res.Status = Pass
		res.Evidence = fmt.Sprintf("limio.lookup=full: the scan reads every subscription whose summary lacks data.zuora (summaries carry %s)", carried)
	case ref+zu == 0:
		res.Status = Fail
		res.Evidence = fmt.Sprintf("none of %d summaries carries reference or data.zuora; they carry only %s", len(items), carried)
		res.Fix = "set limio.lookup=full (the index's scan then reads each subscription in full, once per unknown key)"
	default:
		res.Status = Pass
		res.Evidence = fmt.Sprintf("of %d summaries, %d carry reference and %d data.zuora", len(items), ref, zu)
	}
	return res
}

func sortedKeys(m map[string]bool) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// byID reads a subscription by id, as a sync does once it knows the id.
func (r *runner) byID(ctx context.Context, lc *limio.Client, id string) *limio.Subscription {
	m := r.rec.mark()
	s, err := lc.GetSubscription(ctx, id)
	res := Result{ID: "limio.subscription_by_id", Assumption: "GET /api/objects/limio/subscriptions/{id} reads a subscription"}
	ex := r.rec.last(m, http.MethodGet, "/api/objects/limio/subscriptions/")
	if err != nil {
		r.add(errResult(res, ex, err, true))
		return nil
	}
	res = res.from(ex)
	zn := ""
	if s.Data.Zuora != nil {
		zn = s.Data.Zuora.SubscriptionNumber
	}
	res.Status, res.Evidence = Pass, fmt.Sprintf("%s status %q, reference %q, data.zuora.subscriptionNumber %q, data.termEndDate %q",
		s.ID, s.Status, s.Reference, zn, deref(s.Data.TermEndDate))
	r.add(res)
	return s
}

// lookup finds a subscription by Zuora number or reference the way a sync
// does (the index, else the scan of summaries).
func (r *runner) lookup(ctx context.Context, lc *limio.Client, key string) *limio.Subscription {
	m := r.rec.mark()
	s, err := lc.Resolve(ctx, key)
	res := Result{ID: "limio.lookup", Assumption: "a subscription is found by Zuora number or reference (index, else a scan of summaries)"}
	exs := r.rec.since(m)
	var ex *exchange
	if len(exs) > 0 {
		ex = exs[len(exs)-1]
	}
	switch {
	case limio.AssumptionOf(err) != "":
		res = errResult(res, ex, err, true)
		res.ID = "limio." + limio.AssumptionOf(err) + ".lookup"
		res.Fix = "set limio.lookup=full"
		r.add(res)
		return nil
	case errors.Is(err, upstream.ErrNotFound):
		res = res.from(ex)
		res.Status, res.Evidence = Unknown, fmt.Sprintf("Limio knows no subscription %q (%d request(s)); a sync would create one", key, len(exs))
		r.add(res)
		return nil
	case err != nil:
		r.add(errResult(res, ex, err, false))
		return nil
	}
	res = res.from(ex)
	res.Status, res.Evidence = Pass, fmt.Sprintf("%q → %s in %d request(s)", key, s.ID, len(exs))
	r.add(res)
	return s
}

// relatedPath asks the configured related path, and the other one when it
// answers 404; it returns the record types counted, nil when it failed.
func (r *runner) relatedPath(ctx context.Context, lc *limio.Client, d limio.Dialect, subID string) map[string]int {
	res := Result{ID: "limio." + limio.AssumptionRelatedPath,
		Assumption: "the related objects are at /api/objects/limio/" + d.RelatedPath + "/{id}/related (limio.related_path)"}
	m := r.rec.mark()
	items, err := lc.RelatedItems(ctx, d.RelatedPath, subID)
	ex := r.rec.last(m, http.MethodGet, "/related")
	if err != nil {
		res = errResult(res, ex, err, false)
		if errors.Is(err, upstream.ErrNotFound) {
			other := limio.RelatedPlural
			if d.RelatedPath == limio.RelatedPlural {
				other = limio.RelatedSingular
			}
			m2 := r.rec.mark()
			if _, oerr := lc.RelatedItems(ctx, other, subID); oerr == nil {
				res.Status = Fail
				res.Evidence += fmt.Sprintf("; GET %s answered %d", r.rec.last(m2, http.MethodGet, "/related").path, http.StatusOK)
				res.Fix = "set limio.related_path=" + other
			} else {
				res.Status = Fail
				res.Evidence += "; the " + other + " path answers " + errText(oerr)
				res.Fix = "find the related endpoint's path with Limio: a sync reads addresses and schedule entries there"
			}
		}
		r.add(res)
		return nil
	}
	types := map[string]int{}
	for _, raw := range items {
		var head struct {
			RecordType string `json:"record_type"`
		}
		_ = json.Unmarshal(raw, &head)
		types[head.RecordType]++
	}
	res = res.from(ex)
	res.Status, res.Evidence = Pass, "record types: "+countText(types)
	r.add(res)
	return types
}

func countText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	out := make([]string, 0, len(m))
	for k, n := range m {
		if k == "" {
			k = "(no record_type)"
		}
		out = append(out, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// relatedSchedules: a sync reads existing schedule entries where
// limio.schedules_from says; when /related has none, the listing decides
// whether it left them out.
func (r *runner) relatedSchedules(ctx context.Context, lc *limio.Client, d limio.Dialect, subID string, types map[string]int) {
	res := Result{ID: "limio." + limio.AssumptionRelatedSchedules,
		Assumption: "a subscription's schedule entries are read from " + d.SchedulesFrom + " (limio.schedules_from)"}
	m := r.rec.mark()
	if d.SchedulesFrom == limio.SchedulesList {
		entries, err := lc.ListSchedulesOf(ctx, subID)
		ex := r.rec.last(m, http.MethodGet, "/api/objects/limio/schedules")
		if err != nil {
			r.add(errResult(res, ex, err, true))
			return
		}
		res = res.from(ex)
		res.Status, res.Evidence = Pass, fmt.Sprintf("the schedules listing attributes %d entr(ies) to %s (each read in full)", len(entries), subID)
		r.add(res)
		return
	}
	if n := types[limio.RecordSchedule]; n > 0 {
		res = res.from(r.rec.last(0, http.MethodGet, "/related"))
		res.Status, res.Evidence = Pass, fmt.Sprintf("/related returned %d schedule entr(ies) of %s", n, subID)
		r.add(res)
		return
	}
	// /related has none: does the listing have some for this subscription?
	found, listed := 0, 0
	cursor := ""
	var lerr error
	for page := 0; page < schedulePages; page++ {
		var items []limio.Schedule
		items, cursor, lerr = listSchedules(ctx, lc, cursor)
		if lerr != nil {
			break
		}
		for _, it := range items {
			listed++
			if it.Related == subID {
				found++
			}
		}
		if cursor == "" || len(items) == 0 {
			break
		}
	}
	ex := r.rec.last(m, http.MethodGet, "/api/objects/limio/schedules")
	switch {
	case lerr != nil:
		res = errResult(res, ex, lerr, false)
		res.Evidence = "/related returned no schedule entry, and the schedules listing failed: " + res.Evidence
	case found > 0:
		res = res.from(ex)
		res.Status = Fail
		res.Evidence = fmt.Sprintf("/related returned no schedule entry of %s, the schedules listing has %d (of %d listed)", subID, found, listed)
		res.Fix = "set limio.schedules_from=list (a sync then scans the schedules listing for the subscription's entries)"
	default:
		res = res.from(ex)
		res.Status = Unknown
		res.Evidence = fmt.Sprintf("no schedule entry of %s in /related nor in the first %d listed: pick a subscription with entries, or run --write", subID, listed)
	}
	r.add(res)
}

// listSchedules reads one page of schedule summaries through the client's
// own listing (ListSchedulesOf reads every page; a check reads a few).
func listSchedules(ctx context.Context, lc *limio.Client, cursor string) ([]limio.Schedule, string, error) {
	return lc.ListSchedules(ctx, cursor, 100)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
