package main

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/metrics"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// Operations wiring: metrics for the ingress and the worker, and the sweep.

// ingressMetrics is a newIngress option: /metrics (with asynq's queue
// series: the ingress is the one exporter of those), callouts counted by what
// became of them, and the received time the event-to-sync lag starts from.
func ingressMetrics(m *metrics.Metrics, rdb redis.UniversalClient, log *zap.Logger) func(*api.Deps) {
	return func(d *api.Deps) {
		if err := m.WatchQueues(asynq.NewInspectorFromRedisClient(rdb)); err != nil {
			log.Warn("asynq queue metrics unavailable", zap.Error(err))
		}
		d.Metrics = m.Handler()
		d.Enqueuer = stampedEnqueuer{next: d.Enqueuer, m: m}
		d.Outcomes = countedOutcomes{Outcomes: d.Outcomes, m: m}
	}
}

// stampedEnqueuer sets Trigger.Received (once, at the ingress) and counts
// enqueued and coalesced requests.
type stampedEnqueuer struct {
	next api.Enqueuer
	m    *metrics.Metrics
}

func (e stampedEnqueuer) Enqueue(ctx context.Context, key string, trig syncer.Trigger, queue string) (worker.EnqueueStatus, string, error) {
	if trig.Received.IsZero() {
		trig.Received = time.Now().UTC()
	}
	st, id, err := e.next.Enqueue(ctx, key, trig, queue)
	if err == nil {
		e.m.Enqueue(queue, st)
	}
	return st, id, err
}

// countedOutcomes counts the callouts the ingress loop guard skipped.
type countedOutcomes struct {
	api.Outcomes
	m *metrics.Metrics
}

func (o countedOutcomes) RecordSkipped(ctx context.Context, key string, trig syncer.Trigger) error {
	o.m.Enqueue(worker.QueueCallouts, worker.SkippedStatus)
	return o.Outcomes.RecordSkipped(ctx, key, trig)
}

func sweepConfig(c *config.Config) worker.SweepConfig {
	return worker.SweepConfig{
		Schedule: c.Sweep.Schedule,
		Lookback: c.Sweep.Lookback,
		Overlap:  c.Sweep.Overlap,
		Prefix:   workerConfig(c).Prefix,
	}
}

// newSweep registers the sweep handler on ws and returns its scheduler, or
// nil when the sweep is off (no schedule, or no Zuora client).
func newSweep(c *config.Config, redisOpt asynq.RedisConnOpt, rdb redis.UniversalClient, ws *worker.Server,
	src worker.SubscriptionQuerier, log *zap.Logger, opts ...worker.Option) (*asynq.Scheduler, error) {
	if c.Sweep.Schedule == "" || src == nil {
		return nil, nil
	}
	enq := worker.NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), workerConfig(c).EnqueueConfig(), log, opts...)
	sw, err := worker.NewSweeper(src, enq, rdb, sweepConfig(c), log, opts...)
	if err != nil {
		return nil, err
	}
	ws.Handle(worker.TaskTypeSweep, sw)
	return sw.Scheduler(redisOpt)
}
