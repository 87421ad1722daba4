package syncer

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/zsync/zsync/limio"
)

// maxTimelineChanges bounds the changes listed in one timeline event.
const maxTimelineChanges = 50

// apply sends the plan's writes in order: customer, subscription, addresses,
// schedule entries, one request per object, then one timeline event. It is
// idempotent: creates go to deterministic ids with full objects, updates set
// absolute values, so a re-run after a crash at any point re-plans from what
// Limio holds and converges on the same state without duplicates.
func (s *Syncer) apply(ctx context.Context, cs *Changeset) error {
	if cs.remember != "" {
		if err := s.limio.Remember(ctx, cs.remember, cs.LimioID); err != nil {
			return fmt.Errorf("limio remember %s: %w", cs.remember, err)
		}
	}
	if len(cs.writes) == 0 {
		return nil
	}
	guard := writeGuard(ctx)
	for _, w := range cs.writes {
		if err := guard.BeforeWrite(ctx); err != nil {
			return fmt.Errorf("limio write %s %s not sent: %w", w.object, w.id, err)
		}
		if w.create != nil {
			err := s.limio.Create(ctx, w.path, w.id, w.create)
			guard.AfterWrite(ctx, err)
			if err != nil {
				return fmt.Errorf("limio create %s %s: %w", w.object, w.id, err)
			}
		} else {
			var p limio.Patch
			for _, f := range w.sets {
				p.Set(f.field, f.value)
			}
			err := s.limio.Update(ctx, w.path, w.id, p)
			guard.AfterWrite(ctx, err)
			if err != nil {
				return fmt.Errorf("limio update %s %s: %w", w.object, w.id, err)
			}
		}
		if w.remember != "" {
			// Right after the create, so a crash later still finds it.
			if err := s.limio.Remember(ctx, w.remember, w.id); err != nil {
				return fmt.Errorf("limio remember %s: %w", w.remember, err)
			}
		}
	}
	if err := s.readBack(ctx, cs); err != nil {
		return err
	}
	// The timeline is an audit trail, not state: Limio already holds the
	// result, and a retry would find nothing to do (so post nothing). A
	// failure here is logged, not returned; a refused one is not sent.
	if err := guard.BeforeWrite(ctx); err != nil {
		return fmt.Errorf("limio timeline event not sent: %w", err)
	}
	if err := s.limio.PostTimeline(ctx, timelineEvent(cs)); err != nil {
		s.logger(ctx).Warn("timeline event not recorded", zap.String("subscription", cs.Subscription),
			zap.String("limio_id", cs.LimioID), zap.Error(err))
	}
	return nil
}

func timelineEvent(cs *Changeset) limio.TimelineEvent {
	changes := cs.Changes
	if len(changes) > maxTimelineChanges {
		changes = changes[:maxTimelineChanges]
	}
	return limio.TimelineEvent{
		ForSubscription: limio.TimelineTarget{ID: cs.LimioID},
		Name:            "Synced from Zuora",
		Type:            "zsync.sync",
		Source:          "zsync",
		Fields: []limio.TimelineField{
			{Label: "Result", Type: "string", Value: string(cs.Result)},
			{Label: "Zuora subscription", Type: "string", Value: cs.Subscription},
			{Label: "Changes", Type: "number", Value: len(cs.Changes)},
			{Label: "Details", Type: "json", Value: changes},
		},
	}
}
