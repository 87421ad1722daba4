package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/zsync/zsync/syncer"
)

// The epoch of a subscription lives in one Redis hash, <prefix>epoch:X, so
// that every script touching it names a single key (Redis Cluster safe without
// hash tags):
//
//	e   the current epoch: callouts enqueue (or coalesce into) task "X:<e>"
//	n   callouts accepted during epoch e
//	pe  the epoch the last advance closed, pn its callout count, so a retry
//	    of that task still knows how many callouts it carries
//	s   when the last advance happened (Redis clock, ms): a sync started
//	j:<e>:<job>  bulk jobs waiting on epoch e (bulk.go)
//
// The hash never expires: epochs must only grow, or a retained or archived
// task id could be reused and swallow a callout.

// claimScript reads the epoch and counts the callout in it, atomically with
// respect to advanceScript: a callout either lands in the count the handler
// reads when it closes the epoch, or in the next epoch. With a job id
// (ARGV[1], bulk re-sync) it also registers the job as waiting on the key,
// in the same step (field j:<e>:<job>), so the run that closes epoch e is
// sure to see it (settleJobs in bulk.go). It returns the epoch, the count,
// and how many milliseconds ago the last sync of the key started (-1: none).
var claimScript = redis.NewScript(claimLua)

const claimLua = `
local e = redis.call('HGET', KEYS[1], 'e') or '0'
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if ARGV[1] ~= '' then
  redis.call('HINCRBY', KEYS[1], 'j:' .. e .. ':' .. ARGV[1], 1)
end
local s = tonumber(redis.call('HGET', KEYS[1], 's') or '-1')
local age = -1
if s >= 0 then
  local t = redis.call('TIME')
  age = math.max(0, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - s)
end
return {tonumber(e), n, age}
`

// reviveScript closes epoch ARGV[2] when it is still current, because its
// task will never run (archived or completed: an operator archived it in
// asynqmon), then claims like claimScript. It leaves the sync start time
// alone: no sync started. The count of the closed epoch is kept in pn, as
// an advance keeps it, for a re-run of that task.
var reviveScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
if cur == tonumber(ARGV[2]) then
  local cn = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
  redis.call('HSET', KEYS[1], 'e', cur + 1, 'n', 0, 'pe', cur, 'pn', cn)
end
` + claimLua)

// claim is what claimScript answered.
type claim struct {
	epoch    int64
	callouts int64         // callouts counted in this epoch so far
	since    time.Duration // since the last sync of the key started; <0 none
}

func parseClaim(key string, v []int64, err error) (claim, error) {
	if err == nil && len(v) != 3 {
		err = fmt.Errorf("unexpected reply %v", v)
	}
	if err != nil {
		return claim{}, fmt.Errorf("read epoch of %s: %w", key, err)
	}
	since := time.Duration(v[2]) * time.Millisecond
	if v[2] < 0 {
		since = -1
	}
	return claim{epoch: v[0], callouts: v[1], since: since}, nil
}

// advanceScript closes the task's epoch (ARGV[1], -1 when unknown) so later
// callouts make a new task. With ARGV[2] == "1" it only does so when the
// task's epoch is still current (the dead-task paths). It returns the current
// epoch, the callouts the task carries (-1 when unknown) and 1 if it advanced;
// a task whose epoch was already closed (a retry) gets the count remembered
// when it was closed.
var advanceScript = redis.NewScript(`
local now = redis.call('TIME')
local s = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local e = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local t = tonumber(ARGV[1])
local cas = ARGV[2] == '1'
if t < 0 then
  if cas then return {e, -1, 0} end
  redis.call('HSET', KEYS[1], 'e', e + 1, 'n', 0, 'pe', e, 'pn', n, 's', s)
  return {e + 1, -1, 1}
end
if e == t then
  redis.call('HSET', KEYS[1], 'e', e + 1, 'n', 0, 'pe', e, 'pn', n, 's', s)
  return {e + 1, n, 1}
end
if e < t then
  redis.call('HSET', KEYS[1], 'e', t + 1, 'n', 0, 'pe', t, 'pn', -1, 's', s)
  return {t + 1, -1, 1}
end
if tonumber(redis.call('HGET', KEYS[1], 'pe') or '-1') == t then
  return {e, tonumber(redis.call('HGET', KEYS[1], 'pn') or '-1'), 0}
end
return {e, -1, 0}
`)

type advance struct {
	epoch    int64 // current epoch after the call
	callouts int64 // callouts the task carries; -1 unknown
	advanced bool
}

func runAdvance(ctx context.Context, rdb redis.UniversalClient, k keyspace, key string, taskEpoch int64, onlyIfCurrent bool) (advance, error) {
	cas := "0"
	if onlyIfCurrent {
		cas = "1"
	}
	v, err := advanceScript.Run(ctx, rdb, []string{k.epoch(key)}, taskEpoch, cas).Int64Slice()
	if err != nil {
		return advance{}, fmt.Errorf("advance epoch of %s: %w", key, err)
	}
	if len(v) != 3 {
		return advance{}, fmt.Errorf("advance epoch of %s: unexpected reply %v", key, v)
	}
	return advance{epoch: v[0], callouts: v[1], advanced: v[2] == 1}, nil
}

// EnqueueConfig configures the Enqueuer. Zero values take the defaults.
type EnqueueConfig struct {
	Prefix    string        // Redis key prefix; default "zsync:"
	MaxRetry  int           // retries of a failing sync; default 10
	Timeout   time.Duration // per attempt; default 2m
	Retention time.Duration // keep completed tasks for asynqmon; 0 = don't
	// CoalesceWindow holds back a new task for a key whose last sync started
	// less than this long ago (default 1s; negative: never). Such a task
	// would only wait for the lock anyway; held back, it collects the rest
	// of a burst, so a burst costs about 1 + length/window syncs, not one per
	// sync cycle.
	CoalesceWindow time.Duration
}

const defaultCoalesceWindow = time.Second

// republishEvery bounds how stale asynq's queue registry can be: asynq adds a
// queue to asynq:queues only on a client's first enqueue to it, so after
// Redis comes back empty the queues are invisible to asynqmon and the
// Inspector until re-registered.
const republishEvery = 10 * time.Second

// allQueuesKey is asynq's registry of queue names (base.AllQueues in v0.26).
const allQueuesKey = "asynq:queues"

func (c EnqueueConfig) withDefaults() EnqueueConfig {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.MaxRetry == 0 {
		c.MaxRetry = defaultMaxRetry
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTaskTimeout
	}
	if c.CoalesceWindow == 0 {
		c.CoalesceWindow = defaultCoalesceWindow
	}
	return c
}

// Enqueuer turns callouts into sync tasks, one per subscription and epoch.
// The ingress, bulk re-sync and the sweep all enqueue through it.
type Enqueuer struct {
	rdb       redis.UniversalClient
	client    *asynq.Client
	cfg       EnqueueConfig
	keys      keyspace
	log       *zap.Logger
	metrics   Metrics
	tracer    trace.Tracer
	claims    *claimer
	published sync.Map // queue → time.Time of the last registration
}

// NewEnqueuer returns an Enqueuer. rdb and client must reach the same Redis.
func NewEnqueuer(rdb redis.UniversalClient, client *asynq.Client, cfg EnqueueConfig, logger *zap.Logger, opts ...Option) *Enqueuer {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = zap.NewNop()
	}
	o := applyOptions(opts)
	return &Enqueuer{rdb: rdb, client: client, cfg: cfg, keys: keyspace{cfg.Prefix}, log: logger, metrics: o.metrics, tracer: o.tracer,
		claims: newClaimer(rdb, keyspace{cfg.Prefix})}
}

// Enqueue asks for a sync of key. It returns Enqueued when it created the task,
// Coalesced when a task that has not started reading Zuora already exists
// (it will see this change), and the task id either way. An error means
// nothing was recorded (Redis unreachable: the ingress answers 503) or the key
// is invalid (ErrInvalidKey).
func (e *Enqueuer) Enqueue(ctx context.Context, key string, trig syncer.Trigger, queue string) (EnqueueStatus, string, error) {
	if queue == "" {
		queue = QueueCallouts
	}
	ctx, span := e.tracer.Start(ctx, "zsync.enqueue", trace.WithAttributes(attribute.String("zsync.subscription", key), attribute.String("zsync.queue", queue)))
	defer span.End()
	task, err := newSyncTaskContext(ctx, key, trig)
	if err != nil {
		return "", "", err
	}
	c, err := e.claims.claim(ctx, key)
	if err != nil {
		return "", "", err
	}
	return e.store(ctx, task, key, c, queue, "")
}

// store enqueues the task of a claimed epoch: a task id conflict means the
// epoch's task exists. If it can still run (pending, scheduled, retrying,
// active before its advance), the callout is in it. If it never will (an
// operator archived it in asynqmon, or it completed without closing its
// epoch), the epoch is closed and the callout claimed again in a new one.
// Only a conflict costs the extra round trip.
func (e *Enqueuer) store(ctx context.Context, task *asynq.Task, key string, c claim, queue, job string) (EnqueueStatus, string, error) {
	e.republish(ctx, queue)
	status := Enqueued
	var id string
	for attempt := 0; ; attempt++ {
		id = taskID(key, c.epoch)
		opts := e.taskOptions(id, queue)
		if c.since >= 0 && c.since < e.cfg.CoalesceWindow {
			opts = append(opts, asynq.ProcessIn(e.cfg.CoalesceWindow-c.since))
		}
		_, err := e.client.EnqueueContext(ctx, task, opts...)
		if err == nil {
			break
		}
		if !errors.Is(err, asynq.ErrTaskIDConflict) {
			return "", id, fmt.Errorf("enqueue %s: %w", id, err)
		}
		if attempt >= maxRevives {
			status = Coalesced
			break
		}
		state, err := e.taskState(ctx, queue, id)
		if err != nil {
			return "", id, err
		}
		switch state {
		case "":
			// Deleted since the conflict: store it again under the same id.
			continue
		case "archived", "completed":
			if c, err = e.revive(ctx, key, c.epoch, job); err != nil {
				return "", id, err
			}
			e.log.Info("the epoch's task will never run; callout given a new task",
				zap.String("subscription", key), zap.String("dead_task_id", id), zap.String("state", state))
			continue
		}
		status = Coalesced
		break
	}
	e.metrics.Enqueue(queue, status)
	if ce := e.log.Check(zap.DebugLevel, "sync requested"); ce != nil {
		ce.Write(zap.String("subscription", key), zap.String("task_id", id), zap.String("queue", queue),
			zap.String("status", string(status)), zap.Int64("callouts", c.callouts), zap.String("job", job))
	}
	return status, id, nil
}

// maxRevives bounds the new tasks one callout tries after conflicts with
// dead tasks (each attempt is a conflict the operator caused meanwhile).
const maxRevives = 3

// taskState reads the state asynq keeps in a task's hash (asynq v0.26
// base.TaskKey and its "state" field): "" when the task doesn't exist.
func (e *Enqueuer) taskState(ctx context.Context, queue, id string) (string, error) {
	st, err := e.rdb.HGet(ctx, "asynq:{"+queue+"}:t:"+id, "state").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read state of task %s: %w", id, err)
	}
	return st, nil
}

// revive closes epoch (if still current) and claims the callout again.
func (e *Enqueuer) revive(ctx context.Context, key string, epoch int64, job string) (claim, error) {
	v, err := reviveScript.Run(ctx, e.rdb, []string{e.keys.epoch(key)}, job, epoch).Int64Slice()
	return parseClaim(key, v, err)
}

// taskOptions are the options every sync task gets.
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

// republish re-registers queue with asynq now and then (see republishEvery).
// A failure is left to the enqueue that follows to report.
func (e *Enqueuer) republish(ctx context.Context, queue string) {
	now := time.Now()
	if last, ok := e.published.Load(queue); ok && now.Sub(last.(time.Time)) < republishEvery {
		return
	}
	if e.rdb.SAdd(ctx, allQueuesKey, queue).Err() == nil {
		e.published.Store(queue, now)
	}
}
