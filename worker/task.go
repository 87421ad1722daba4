package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/internal/tracing"
	"github.com/zsync/zsync/syncer"
)

// taskTypeSync is the asynq type of a subscription sync task.
const taskTypeSync = "zsync:sync"

// syncPayload is the task payload. It is canonical (fixed field order, no
// timestamps) so equal callouts make equal bytes.
type syncPayload struct {
	Key     string         `json:"key"`
	Trigger syncer.Trigger `json:"trigger"`
}

// newSyncTask builds the sync task for key (the id as received: Zuora
// subscription number, sub-… id or reference).
func newSyncTask(key string, trig syncer.Trigger, opts ...asynq.Option) (*asynq.Task, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	b, err := json.Marshal(syncPayload{Key: key, Trigger: trig})
	if err != nil {
		return nil, fmt.Errorf("encode sync task: %w", err)
	}
	return asynq.NewTask(taskTypeSync, b, opts...), nil
}

// newSyncTaskContext is newSyncTask carrying ctx's trace context in the
// task's headers, so the run continues the enqueuer's trace.
func newSyncTaskContext(ctx context.Context, key string, trig syncer.Trigger) (*asynq.Task, error) {
	t, err := newSyncTask(key, trig)
	if err != nil {
		return nil, err
	}
	if h := tracing.Inject(ctx); h != nil {
		t = asynq.NewTaskWithHeaders(t.Type(), t.Payload(), h)
	}
	return t, nil
}

// decodePayload reads a sync task's payload. Unknown fields are ignored: a
// newer ingress may add some while older workers still run (a rolling
// upgrade), and refusing them would archive the task.
func decodePayload(b []byte) (syncPayload, error) {
	var p syncPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decode sync task payload: %w", err)
	}
	if err := validateKey(p.Key); err != nil {
		return p, err
	}
	return p, nil
}

// hasOrder reports whether the trigger names the order that made the change:
// only such triggers can be skipped by the loop guard.
func hasOrder(t syncer.Trigger) bool {
	return t.OrderNumber != "" || t.CreatedByID != "" || t.OrderSource != "" || t.InitiatedSource != ""
}

// withoutOrder drops the order fields so the syncer runs a full sync: used
// when other callouts coalesced into a task whose own callout was Limio's.
func withoutOrder(t syncer.Trigger) syncer.Trigger {
	t.OrderNumber, t.CreatedByID, t.OrderSource, t.InitiatedSource = "", "", "", ""
	return t
}
