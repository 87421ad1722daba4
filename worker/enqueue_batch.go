package worker

import (
	"context"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/syncer"
)

// batchResult is what enqueueBatch did with one key.
type batchResult struct {
	Key    string
	Status EnqueueStatus // Enqueued or Coalesced; "" with Err
	TaskID string
	Err    error // errInvalidKey (wrapped) for a key the worker can't use
}

// enqueueBatch is Enqueue for many keys at once (bulk re-sync): the epochs of
// all keys are claimed in one pipelined round trip (claimer.claimMany, the
// pipeline callouts share), then each task is stored
// exactly as Enqueue stores it (same task id per epoch, same options, so a
// bulk key coalesces with callouts and vice versa). With job != "" every
// claim registers the key with that job (see claimScript).
//
// Invalid keys get a per-key Err and are not claimed. The returned error
// means Redis failed: results[i].Err says which keys were not stored.
func (e *Enqueuer) enqueueBatch(ctx context.Context, keys []string, trig syncer.Trigger, queue, job string) ([]batchResult, error) {
	if queue == "" {
		queue = QueueCallouts
	}
	if strings.ContainsAny(job, ":{} \t\r\n") {
		return nil, fmt.Errorf("invalid job id %q", job)
	}
	res := make([]batchResult, len(keys))
	tasks := make([]*asynq.Task, len(keys))
	reqs := make([]claimReq, 0, len(keys))
	for i, key := range keys {
		res[i].Key = key
		t, err := newSyncTaskContext(ctx, key, trig)
		if err != nil {
			res[i].Err = err
			continue
		}
		tasks[i] = t
		reqs = append(reqs, claimReq{key: key, job: job})
	}
	var claims []claimRes
	if len(reqs) > 0 {
		claims = e.claims.claimMany(ctx, reqs)
	}
	var firstErr error
	for i, key := range keys {
		if tasks[i] == nil {
			continue
		}
		c := claims[0]
		claims = claims[1:]
		if c.err != nil {
			res[i].Err = c.err
			firstErr = firstOf(firstErr, c.err)
			continue
		}
		res[i].Status, res[i].TaskID, res[i].Err = e.store(ctx, tasks[i], key, c.c, queue, job)
		if res[i].Err != nil {
			res[i].Status = ""
			firstErr = firstOf(firstErr, res[i].Err)
		}
	}
	return res, firstErr
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
