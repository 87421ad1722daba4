package main

import (
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/worker"
)

// Operations wiring: metrics for the ingress and the worker, and the sweep.

// newSweep registers the sweep handler on ws and returns its scheduler, or
// nil when the sweep is off (no schedule).
func newSweep(c *config.Config, redisOpt asynq.RedisConnOpt, rdb redis.UniversalClient, ws *worker.Server,
	enq *worker.Enqueuer, src worker.SweepSource, log *zap.Logger, opts ...worker.Option) (*asynq.Scheduler, error) {
	if c.Sweep.Schedule == "" {
		return nil, nil
	}
	sw, err := worker.NewSweeper(src, enq, rdb, c.SweepConfig(), log, opts...)
	if err != nil {
		return nil, err
	}
	ws.Handle(worker.TaskTypeSweep, sw)
	return sw.Scheduler(redisOpt)
}
