package worker

import (
	"context"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/syncer"
)

// BatchResult is what EnqueueBatch did with one key.
type BatchResult struct {
	Key    string
	Status EnqueueStatus // Enqueued or Coalesced; "" with Err
	TaskID string
	Err    error // ErrInvalidKey (wrapped) for a key the worker can't use
}

// EnqueueBatch is Enqueue for many keys at once (bulk re-sync): the epochs of
// all keys are claimed in one pipelined round trip, then each task is stored
// exactly as Enqueue stores it (same task id per epoch, same options, so a
// bulk key coalesces with callouts and vice versa). With job != "" every
// claim registers the key with that job (see claimScript).
//
// Invalid keys get a per-key Err and are not claimed. The returned error
// means Redis failed: results[i].Err says which keys were not stored.
func (e *Enqueuer) EnqueueBatch(ctx context.Context, keys []string, trig syncer.Trigger, queue, job string) ([]BatchResult, error) {
	if queue == "" {
		queue = QueueCallouts
	}
	if strings.ContainsAny(job, ":{} \t\r\n") {
		return nil, fmt.Errorf("invalid job id %q", job)
	}
	res := make([]BatchResult, len(keys))
	tasks := make([]*asynq.Task, len(keys))
	cmds := make([]*redis.Cmd, len(keys))
	// Loading first lets the pipeline use EVALSHA; a NOSCRIPT reply (the
	// cache flushed in between) means the command did not run, so that key
	// alone is claimed again below.
	if err := claimScript.Load(ctx, e.rdb).Err(); err != nil {
		return nil, fmt.Errorf("load claim script: %w", err)
	}
	pipe := e.rdb.Pipeline()
	for i, key := range keys {
		res[i].Key = key
		t, err := newSyncTaskContext(ctx, key, trig)
		if err != nil {
			res[i].Err = err
			continue
		}
		tasks[i] = t
		cmds[i] = claimScript.EvalSha(ctx, pipe, []string{e.keys.epoch(key)}, job)
	}
	if pipe.Len() > 0 {
		_, _ = pipe.Exec(ctx) // errors are read per command
	}
	var firstErr error
	for i, key := range keys {
		if cmds[i] == nil {
			continue
		}
		v, err := cmds[i].Int64Slice()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			v, err = claimScript.Run(ctx, e.rdb, []string{e.keys.epoch(key)}, job).Int64Slice()
		}
		c, err := parseClaim(key, v, err)
		if err != nil {
			res[i].Err = err
			firstErr = firstOf(firstErr, err)
			continue
		}
		res[i].Status, res[i].TaskID, res[i].Err = e.store(ctx, tasks[i], key, c, queue, job)
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
