package syncer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
)

// scheduleGetter reads one schedule entry (*limio.Client): with it a
// read-back can tell a create Limio ignored from one /related doesn't show.
type scheduleGetter interface {
	GetSchedule(ctx context.Context, id string) (*limio.Schedule, error)
}

// readBack confirms the writes a tenant could take with a 200 and then
// ignore, so a sync never records a change Limio did not make: a status
// (the subscription's or a schedule entry's; Limio documents no status in a
// PUT body) and a created schedule entry (created by PUT, and expected back
// from the related objects). It costs one or two reads, only for syncs that
// wrote these. A mismatch is permanent and names the assumption.
func (s *Syncer) readBack(ctx context.Context, cs *Changeset) error {
	subStatus := ""
	schedules := map[string]string{} // id → status written
	for _, w := range cs.writes {
		st, has := writtenStatus(w)
		switch {
		case w.object == limio.RecordSubscription && has:
			subStatus = st
		case w.object == limio.RecordSchedule && (has || w.create != nil):
			schedules[w.id] = st
		}
	}
	if subStatus != "" {
		ls, err := s.limio.GetSubscription(ctx, cs.LimioID)
		if errors.Is(err, upstream.ErrNotFound) && cs.Result == Created {
			return Permanent(limio.NewAssumptionError("read-back", limio.AssumptionPutCreates, 0,
				"subscription %s was created by PUT with a 200, yet reads back 404", cs.LimioID))
		}
		if err != nil {
			return fmt.Errorf("limio read-back of subscription %s: %w", cs.LimioID, err)
		}
		if !strings.EqualFold(ls.Status, subStatus) {
			return Permanent(limio.NewAssumptionError("read-back", limio.AssumptionPutStatus, 0,
				"subscription %s has status %q after zsync wrote %q, so Limio did not take the status write (limio.status_field)",
				cs.LimioID, ls.Status, subStatus))
		}
	}
	if len(schedules) == 0 {
		return nil
	}
	rel, err := s.limio.GetRelated(ctx, cs.LimioID)
	if err != nil {
		return fmt.Errorf("limio read-back of %s's schedule: %w", cs.LimioID, err)
	}
	got := map[string]limio.Schedule{}
	for _, e := range rel.Schedules {
		got[e.ID] = e
	}
	ids := make([]string, 0, len(schedules))
	for id := range schedules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e, ok := got[id]
		if !ok {
			return Permanent(s.missingSchedule(ctx, cs.LimioID, id))
		}
		if want := schedules[id]; want != "" && !strings.EqualFold(e.Status, want) {
			return Permanent(limio.NewAssumptionError("read-back", limio.AssumptionPutStatus, 0,
				"schedule entry %s has status %q after zsync wrote %q, so Limio did not take the status write (limio.status_field)",
				id, e.Status, want))
		}
	}
	return nil
}

// missingSchedule says why a schedule entry zsync wrote is not among the
// subscription's: never created, or created and not shown where zsync reads.
func (s *Syncer) missingSchedule(ctx context.Context, subID, id string) error {
	if g, ok := s.limio.(scheduleGetter); ok {
		_, err := g.GetSchedule(ctx, id)
		switch {
		case errors.Is(err, upstream.ErrNotFound):
			return limio.NewAssumptionError("read-back", limio.AssumptionPutCreates, 0,
				"schedule entry %s was created by PUT with a 200, yet reads back 404", id)
		case err == nil:
			return limio.NewAssumptionError("read-back", limio.AssumptionRelatedSchedules, 0,
				"schedule entry %s exists but is not among %s's schedule entries as zsync reads them (limio.schedules_from)", id, subID)
		}
	}
	return limio.NewAssumptionError("read-back", limio.AssumptionRelatedSchedules, 0,
		"schedule entry %s zsync wrote is not among %s's schedule entries (not created, or not returned where zsync reads them: limio.schedules_from)", id, subID)
}

// writtenStatus is the status a write sets, if any.
func writtenStatus(w write) (string, bool) {
	if w.create != nil {
		switch o := w.create.(type) {
		case limio.Subscription:
			return o.Status, o.Status != ""
		case limio.Schedule:
			return o.Status, o.Status != ""
		}
		return "", false
	}
	for _, f := range w.sets {
		if f.field == limio.FieldStatus {
			v, ok := f.value.(string)
			return v, ok
		}
	}
	return "", false
}
