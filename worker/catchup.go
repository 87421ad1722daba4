package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
)

// After Redis lost its data, the pending and retrying sync tasks are gone,
// and so is the sweep's high-water mark. The catch-up is a sweep of its own
// task type over a configured maximum window (sweep.catchup_max): every
// process that notices the loss enqueues it under one task id named by the
// loss's marker, kept after it ran, so it runs once across processes.

// TaskTypeCatchUp is the asynq type of the catch-up sweep after a Redis data
// loss.
const TaskTypeCatchUp = "zsync:catchup"

const (
	catchUpRetention = 24 * time.Hour // the id stays taken: a late process can't run it again
	catchUpMaxRetry  = 10
	catchUpTimeout   = 30 * time.Minute
)

type catchUpPayload struct {
	Since  time.Time `json:"since"`
	Marker string    `json:"marker"`
}

// EnqueueCatchUp enqueues the catch-up of the loss named by marker, asking
// Zuora for the changes of the last window. It returns false when another
// process enqueued it first.
func EnqueueCatchUp(ctx context.Context, client *asynq.Client, marker string, window time.Duration, now time.Time) (bool, error) {
	b, err := json.Marshal(catchUpPayload{Since: now.Add(-window).UTC(), Marker: marker})
	if err != nil {
		return false, err
	}
	_, err = client.EnqueueContext(ctx, asynq.NewTask(TaskTypeCatchUp, b), asynq.TaskID("catchup-"+marker),
		asynq.Queue(QueueBulk), asynq.Retention(catchUpRetention), asynq.MaxRetry(catchUpMaxRetry),
		asynq.Timeout(catchUpTimeout))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("enqueue the catch-up sweep: %w", err)
	}
	return true, nil
}

// CatchUp runs the catch-up task: like a sweep from the payload's since,
// through the same epoch dedup, into the bulk queue.
type CatchUp struct {
	src SweepSource
	enq *Enqueuer
	log *zap.Logger
	now func() time.Time
}

// NewCatchUp returns the catch-up handler; register it with
// Server.Handle(TaskTypeCatchUp, c) in every worker process.
func NewCatchUp(src SweepSource, enq *Enqueuer, logger *zap.Logger) *CatchUp {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &CatchUp{src: src, enq: enq, log: logger.Named("catchup"), now: time.Now}
}

// ProcessTask implements asynq.Handler.
func (c *CatchUp) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p catchUpPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.Since.IsZero() {
		return fmt.Errorf("catch-up payload %q: %v: %w", t.Payload(), err, asynq.SkipRetry)
	}
	start := c.now()
	enq, coal, err := sweepSince(ctx, c.src, c.enq, QueueBulk, c.log, p.Since, start)
	if err != nil {
		c.log.Warn("catch-up sweep failed; retried", zap.Time("since", p.Since), zap.Int("enqueued", enq), zap.Error(err))
		return fmt.Errorf("catch-up since %s: %w", p.Since.Format(time.RFC3339), err)
	}
	c.log.Warn("catch-up sweep after a Redis data loss", zap.String("marker", p.Marker), zap.Time("since", p.Since),
		zap.Int("enqueued", enq), zap.Int("coalesced", coal), zap.Duration("duration", c.now().Sub(start)))
	return nil
}
