package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/syncer"
)

// claimForJobScript is claimScript (same epoch semantics: read e, count the
// callout in n) that can also register a bulk job as waiting on the key, in
// the same hash and atomically with reading the epoch: field j:<e>:<job>
// counts the job's claims in epoch e. Because registration and claim are one
// step, the task run that closes epoch e (or any later one) is sure to see
// it: the job's progress can't miss a key that coalesced into a task that
// was already running (see settleJobs in bulk.go).
var claimForJobScript = redis.NewScript(`
local e = redis.call('HGET', KEYS[1], 'e') or '0'
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if ARGV[1] ~= '' then
  redis.call('HINCRBY', KEYS[1], 'j:' .. e .. ':' .. ARGV[1], 1)
end
return {tonumber(e), n}
`)

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
// claim registers the key with that job (see claimForJobScript).
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
	if err := claimForJobScript.Load(ctx, e.rdb).Err(); err != nil {
		return nil, fmt.Errorf("load claim script: %w", err)
	}
	pipe := e.rdb.Pipeline()
	for i, key := range keys {
		res[i].Key = key
		t, err := NewSyncTask(key, trig)
		if err != nil {
			res[i].Err = err
			continue
		}
		tasks[i] = t
		cmds[i] = claimForJobScript.EvalSha(ctx, pipe, []string{e.keys.epoch(key)}, job)
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
			v, err = claimForJobScript.Run(ctx, e.rdb, []string{e.keys.epoch(key)}, job).Int64Slice()
		}
		if err == nil && len(v) != 2 {
			err = fmt.Errorf("unexpected reply %v", v)
		}
		if err != nil {
			res[i].Err = fmt.Errorf("read epoch of %s: %w", key, err)
			firstErr = firstOf(firstErr, res[i].Err)
			continue
		}
		id := taskID(key, v[0])
		res[i].TaskID = id
		status := Enqueued
		if _, err := e.client.EnqueueContext(ctx, tasks[i], e.taskOptions(id, queue)...); err != nil {
			if !errors.Is(err, asynq.ErrTaskIDConflict) {
				res[i].Err = fmt.Errorf("enqueue %s: %w", id, err)
				firstErr = firstOf(firstErr, res[i].Err)
				continue
			}
			status = Coalesced
		}
		res[i].Status = status
		e.metrics.Enqueue(queue, status)
		if ce := e.log.Check(zap.DebugLevel, "sync requested"); ce != nil {
			ce.Write(zap.String("subscription", key), zap.String("task_id", id), zap.String("queue", queue),
				zap.String("status", string(status)), zap.Int64("callouts", v[1]), zap.String("job", job))
		}
	}
	return res, firstErr
}

// taskOptions are the options Enqueue gives a task (kept identical).
func (e *Enqueuer) taskOptions(id, queue string) []asynq.Option {
	opts := []asynq.Option{
		asynq.TaskID(id), asynq.Queue(queue),
		asynq.MaxRetry(e.cfg.MaxRetry), asynq.Timeout(e.cfg.Timeout),
	}
	if e.cfg.Retention > 0 {
		opts = append(opts, asynq.Retention(e.cfg.Retention))
	}
	return opts
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
