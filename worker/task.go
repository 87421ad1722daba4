package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/internal/tracing"
	"github.com/zsync/zsync/syncer"
)

// TaskTypeSync is the asynq type of a subscription sync task.
const TaskTypeSync = "zsync:sync"

// ErrInvalidKey is returned (wrapped) for a subscription key the worker can't
// use: empty, too long, or with characters that don't belong in a Redis key or
// task id (braces would become Redis Cluster hash tags).
var ErrInvalidKey = errors.New("invalid subscription key")

const maxKeyLen = 200

// syncPayload is the task payload. It is canonical (fixed field order, no
// timestamps) so equal callouts make equal bytes.
type syncPayload struct {
	Key     string         `json:"key"`
	Trigger syncer.Trigger `json:"trigger"`
}

// NewSyncTask builds the sync task for key (the id as received: Zuora
// subscription number, sub-… id or reference).
func NewSyncTask(key string, trig syncer.Trigger, opts ...asynq.Option) (*asynq.Task, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	b, err := json.Marshal(syncPayload{Key: key, Trigger: trig})
	if err != nil {
		return nil, fmt.Errorf("encode sync task: %w", err)
	}
	return asynq.NewTask(TaskTypeSync, b, opts...), nil
}

// newSyncTaskContext is NewSyncTask carrying ctx's trace context in the
// task's headers, so the run continues the enqueuer's trace.
func newSyncTaskContext(ctx context.Context, key string, trig syncer.Trigger) (*asynq.Task, error) {
	t, err := NewSyncTask(key, trig)
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

func validateKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for _, r := range key {
		if r == '{' || r == '}' || r == idHyphen || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
	}
	return nil
}

// idHyphen stands for '-' in task ids: asynqmon shows a task id only up to
// its first ASCII '-' (it expects UUIDs), so "A-S00000201:3" read "A". The
// non-breaking hyphen reads the same and is never in a key (validateKey), so
// an id can be read back.
const idHyphen = '\u2011'

// taskID is the id of key's task for epoch: at most one task per epoch. It
// is key spelled with idHyphen for '-', ':' and the epoch: "A‑S00000201:3".
func taskID(key string, epoch int64) string {
	return idSpelling(key) + ":" + strconv.FormatInt(epoch, 10)
}

func idSpelling(key string) string { return strings.ReplaceAll(key, "-", string(idHyphen)) }

// taskEpoch is the subscription key and epoch of sync task id: from its
// payload, or, when that can't be read, from the id itself, so that even a
// task with a broken payload can close its epoch and not block its
// subscription's later callouts. ok is false when neither works.
func taskEpoch(id string, payload []byte) (key string, epoch int64, ok bool) {
	if p, err := decodePayload(payload); err == nil {
		if e := epochOf(id, p.Key); e >= 0 {
			return p.Key, e, true
		}
		return p.Key, -1, false
	}
	i := strings.LastIndexByte(id, ':')
	if i <= 0 {
		return "", -1, false
	}
	key = strings.ReplaceAll(id[:i], string(idHyphen), "-")
	if validateKey(key) != nil {
		return "", -1, false
	}
	if e := epochOf(id, key); e >= 0 {
		return key, e, true
	}
	return "", -1, false
}

// epochOf reads the epoch back from a task id made by taskID, or -1 when the
// task was not enqueued through the Enqueuer. Ids of the earlier spelling
// ("A-S00000201:3", plain hyphens) are read too: tasks an older ingress
// enqueued during a rolling upgrade still close their epochs.
func epochOf(id, key string) int64 {
	rest, ok := strings.CutPrefix(id, idSpelling(key)+":")
	if !ok {
		if rest, ok = strings.CutPrefix(id, key+":"); !ok {
			return -1
		}
	}
	e, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || e < 0 {
		return -1
	}
	return e
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

// keyspace names every Redis key the worker owns. Keys are prefixed and never
// contain braces, so they spread over a Redis Cluster.
type keyspace struct{ prefix string }

func (k keyspace) epoch(key string) string  { return k.prefix + "epoch:" + key }
func (k keyspace) lock(key string) string   { return k.prefix + "lock:" + key }
func (k keyspace) latest(id string) string  { return k.prefix + "outcome:latest:" + id }
func (k keyspace) history(id string) string { return k.prefix + "outcome:history:" + id }
func (k keyspace) alias(id string) string   { return k.prefix + "outcome:alias:" + id }
func (k keyspace) stream() string           { return k.prefix + "outcome:stream" }
