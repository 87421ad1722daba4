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
// is invalid (errInvalidKey).
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
// A callout that isn't its epoch's first (the claim counted others before
// it) reads the task's state first: the task most likely exists, and a
// live one means coalesced in one round trip, not an enqueue that conflicts
// and then the read.
func (e *Enqueuer) store(ctx context.Context, task *asynq.Task, key string, c claim, queue, job string) (EnqueueStatus, string, error) {
	e.republish(ctx, queue)
	status := Enqueued
	var id string
	peek := c.callouts > 1
	for attempt := 0; ; attempt++ {
		id = taskID(key, c.epoch)
		if !peek {
			var buf [7]asynq.Option
			opts := e.taskOptions(buf[:0], id, queue)
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
		}
		peek = false
		state, err := e.taskState(ctx, queue, id)
		if err != nil {
			return "", id, err
		}
		switch state {
		case "":
			// Not stored yet (the epoch's first callout is still on its
			// way), or deleted since the conflict: store it under the id.
			continue
		case "archived", "completed":
			if c, err = e.claims.revive(ctx, key, c.epoch, job); err != nil {
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

// taskOptions appends the options every sync task gets to opts (an array
// on the caller's stack).
func (e *Enqueuer) taskOptions(opts []asynq.Option, id, queue string) []asynq.Option {
	opts = append(opts, asynq.TaskID(id), asynq.Queue(queue),
		asynq.MaxRetry(e.cfg.MaxRetry), asynq.Timeout(e.cfg.Timeout))
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
