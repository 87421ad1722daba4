package worker

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/field"
)

// DefaultPrefix namespaces every Redis key the worker owns.
const DefaultPrefix = "zsync:"

const (
	defaultConcurrency       = 20
	defaultMaxRetry          = 10
	defaultTaskTimeout       = 2 * time.Minute
	defaultShutdownTimeout   = 30 * time.Second
	defaultLockTTL           = 30 * time.Second
	defaultLockBusyDelay     = time.Second
	defaultRetryBase         = time.Second
	defaultRetryCap          = 5 * time.Minute
	defaultHistoryCap        = 50
	defaultStreamMaxLen      = 10000
	defaultTaskCheckInterval = 50 * time.Millisecond // see Config.TaskCheckInterval
	defaultDelayedCheck      = time.Second
	defaultWriteGrace        = 30 * time.Second
	defaultCalloutsWeight    = 9
	defaultBulkWeight        = 1
	// Completed tasks are kept a day for asynqmon when nothing is set; a
	// zero Retention (keep none) is a choice, so WithDefaults leaves it.
	defaultRetention = 24 * time.Hour
)

// Config configures the worker. Zero values take the defaults (WithDefaults).
type Config struct {
	Prefix          string         // Redis key prefix, no braces; default "zsync:"
	Concurrency     int            // syncs at once in this process; default 20
	Queues          map[string]int // queue weights (not strict); default callouts 9, bulk 1
	MaxRetry        int            // retries of a failing sync; default 10
	TaskTimeout     time.Duration  // per attempt; default 2m
	Retention       time.Duration  // keep completed tasks for asynqmon; 0 keeps none (DefaultConfig: 24h)
	CoalesceWindow  time.Duration  // hold back a task for a key synced this recently; default 1s, <0 never
	ShutdownTimeout time.Duration  // graceful stop; unfinished syncs go back to the queue; default 30s
	LockTTL         time.Duration  // subscription lock, extended every TTL/3; default 30s
	LockBusyDelay   time.Duration  // wait for a busy lock: between d and 2d; default 1s
	RetryBase       time.Duration  // backoff: first ceiling; default 1s
	RetryCap        time.Duration  // backoff: cap; default 5m
	HistoryCap      int            // records kept per subscription; default 50
	StreamMaxLen    int64          // global outcome stream, approximate; default 10000
	// Polling of asynq: pending tasks (callout pickup latency) and the
	// retry/scheduled sets (lock waits snap to it). asynq sleeps ½–1½ of
	// TaskCheckInterval after finding every queue empty, so an idle worker
	// picks a callout up after about half of it: at 250 ms that was more
	// than half a sync's upstream critical path (issue #14); an empty poll
	// costs one dequeue script per queue, some 40 a second at 50 ms.
	TaskCheckInterval        time.Duration // default 50ms
	DelayedTaskCheckInterval time.Duration // default 1s
	// WriteGrace is how long a subscription's lock is kept after a Limio
	// write whose outcome is unknown (it may still land); default 30s, <0 never.
	WriteGrace time.Duration
}

// DefaultConfig is every default: what a worker runs with when nothing is
// set. config/ takes its defaults from here.
func DefaultConfig() Config {
	return Config{
		Prefix:                   DefaultPrefix,
		Concurrency:              defaultConcurrency,
		Queues:                   map[string]int{QueueCallouts: defaultCalloutsWeight, QueueBulk: defaultBulkWeight},
		MaxRetry:                 defaultMaxRetry,
		TaskTimeout:              defaultTaskTimeout,
		Retention:                defaultRetention,
		CoalesceWindow:           defaultCoalesceWindow,
		ShutdownTimeout:          defaultShutdownTimeout,
		LockTTL:                  defaultLockTTL,
		LockBusyDelay:            defaultLockBusyDelay,
		RetryBase:                defaultRetryBase,
		RetryCap:                 defaultRetryCap,
		HistoryCap:               defaultHistoryCap,
		StreamMaxLen:             defaultStreamMaxLen,
		TaskCheckInterval:        defaultTaskCheckInterval,
		DelayedTaskCheckInterval: defaultDelayedCheck,
		WriteGrace:               defaultWriteGrace,
	}
}

// WithDefaults fills zero values from DefaultConfig, except Retention (zero
// keeps no completed task).
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	c.Prefix = cmp.Or(c.Prefix, d.Prefix)
	c.Concurrency = cmp.Or(c.Concurrency, d.Concurrency)
	if len(c.Queues) == 0 {
		c.Queues = d.Queues
	}
	c.MaxRetry = cmp.Or(c.MaxRetry, d.MaxRetry)
	c.TaskTimeout = cmp.Or(c.TaskTimeout, d.TaskTimeout)
	c.CoalesceWindow = cmp.Or(c.CoalesceWindow, d.CoalesceWindow)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
	c.LockTTL = cmp.Or(c.LockTTL, d.LockTTL)
	c.LockBusyDelay = cmp.Or(c.LockBusyDelay, d.LockBusyDelay)
	c.WriteGrace = cmp.Or(c.WriteGrace, d.WriteGrace)
	c.RetryBase = cmp.Or(c.RetryBase, d.RetryBase)
	c.RetryCap = cmp.Or(c.RetryCap, d.RetryCap)
	c.HistoryCap = cmp.Or(c.HistoryCap, d.HistoryCap)
	c.StreamMaxLen = cmp.Or(c.StreamMaxLen, d.StreamMaxLen)
	c.TaskCheckInterval = cmp.Or(c.TaskCheckInterval, d.TaskCheckInterval)
	c.DelayedTaskCheckInterval = cmp.Or(c.DelayedTaskCheckInterval, d.DelayedTaskCheckInterval)
	return c
}

// Validate reports every invalid field, by name.
func (c Config) Validate() error {
	var errs field.Errors
	bad := func(name, msg string, args ...any) { errs.Add("worker."+name, msg, args...) }
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, "{} \t\r\n") {
		bad("prefix", "%q must be non-empty without braces or spaces", c.Prefix)
	}
	if c.Concurrency <= 0 {
		bad("concurrency", "must be positive, got %d", c.Concurrency)
	}
	if len(c.Queues) == 0 {
		bad("queues", "at least one queue is needed")
	}
	for q, w := range c.Queues {
		if q == "" || strings.ContainsAny(q, "{} \t\r\n") || w <= 0 {
			bad("queues", "queue %q weight %d: name must be plain, weight positive", q, w)
		}
	}
	if c.MaxRetry < 0 {
		bad("max_retry", "must not be negative, got %d", c.MaxRetry)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"task_timeout", c.TaskTimeout}, {"shutdown_timeout", c.ShutdownTimeout},
		{"lock_busy_delay", c.LockBusyDelay}, {"retry_base", c.RetryBase}, {"retry_cap", c.RetryCap},
		{"task_check_interval", c.TaskCheckInterval}, {"delayed_task_check_interval", c.DelayedTaskCheckInterval},
	} {
		if d.v <= 0 {
			bad(d.field, "must be positive, got %s", d.v)
		}
	}
	if c.Retention < 0 {
		bad("retention", "must not be negative, got %s", c.Retention)
	}
	if c.LockTTL < 30*time.Millisecond {
		bad("lock_ttl", "must be at least 30ms, got %s", c.LockTTL)
	}
	if c.RetryCap < c.RetryBase {
		bad("retry_cap", "%s is below retry_base %s", c.RetryCap, c.RetryBase)
	}
	if c.HistoryCap <= 0 {
		bad("history_cap", "must be positive, got %d", c.HistoryCap)
	}
	if c.StreamMaxLen <= 0 {
		bad("stream_max_len", "must be positive, got %d", c.StreamMaxLen)
	}
	return errs.Err()
}

// EnqueueConfig is the matching configuration for an Enqueuer.
func (c Config) EnqueueConfig() EnqueueConfig {
	c = c.WithDefaults()
	return EnqueueConfig{Prefix: c.Prefix, MaxRetry: c.MaxRetry, Timeout: c.TaskTimeout, Retention: c.Retention,
		CoalesceWindow: c.CoalesceWindow}
}

// StoreConfig is the matching configuration for an OutcomeStore.
func (c Config) StoreConfig() StoreConfig {
	c = c.WithDefaults()
	return StoreConfig{Prefix: c.Prefix, HistoryCap: c.HistoryCap, StreamMaxLen: c.StreamMaxLen}
}

// retryPolicy is the policy the server uses.
func (c Config) retryPolicy() retryPolicy {
	c = c.WithDefaults()
	return retryPolicy{Base: c.RetryBase, Cap: c.RetryCap}
}

// Server is an asynq server running sync tasks.
type Server struct {
	srv     *asynq.Server
	mux     *asynq.ServeMux
	running atomic.Bool // between a successful Start and Shutdown: the readiness probe
	h       *handler
}

// NewServer builds a worker server. rdb (locks, epochs) and redisOpt (asynq)
// must reach the same Redis; store records the outcomes.
func NewServer(redisOpt asynq.RedisConnOpt, s Syncer, store *OutcomeStore, rdb redis.UniversalClient,
	cfg Config, logger *zap.Logger, opts ...Option) (*Server, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := applyOptions(opts)
	h := &handler{
		syncer:  s,
		store:   store,
		enq:     NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), cfg.EnqueueConfig(), logger, opts...),
		rdb:     rdb,
		keys:    keyspace{cfg.Prefix},
		cfg:     cfg,
		log:     logger,
		metrics: o.metrics,
		tracer:  o.tracer,
	}
	policy := cfg.retryPolicy()
	srv := asynq.NewServer(redisOpt, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues,
		RetryDelayFunc:           policy.RetryDelay,
		IsFailure:                isFailure,
		ErrorHandler:             asynq.ErrorHandlerFunc(h.handleError),
		ShutdownTimeout:          cfg.ShutdownTimeout,
		TaskCheckInterval:        cfg.TaskCheckInterval,
		DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
		Logger:                   asynqLogger{logger.Named("asynq").Sugar()},
		LogLevel:                 asynq.InfoLevel,
	})
	mux := asynq.NewServeMux()
	mux.Handle(taskTypeSync, h)
	return &Server{srv: srv, mux: mux, h: h}, nil
}

// CancelRunning stops every sync running in this process before its next
// Limio write, with cause (it should wrap ErrLockLost), and returns how many.
func (s *Server) CancelRunning(cause error) int { return s.h.running.cancelAll(cause) }

// Handle registers another task type (bulk, sweep) before Start.
func (s *Server) Handle(taskType string, h asynq.Handler) { s.mux.Handle(taskType, h) }

// Start starts processing and returns; it fails when Redis is unreachable.
func (s *Server) Start() error {
	if err := s.srv.Start(s.mux); err != nil {
		return err
	}
	s.running.Store(true)
	return nil
}

// errNotRunning is Ready's answer before Start and after Shutdown.
var errNotRunning = errors.New("asynq server not running")

// Ready reports whether the server takes tasks: started, not shut down, and
// its Redis answers.
func (s *Server) Ready(context.Context) error {
	if !s.running.Load() {
		return errNotRunning
	}
	return s.srv.Ping()
}

// Shutdown stops taking tasks and waits up to ShutdownTimeout for running
// syncs; those still running go back to the queue, then their contexts end,
// and Shutdown returns once each recorded that it was interrupted (within
// recordGrace).
func (s *Server) Shutdown() {
	s.running.Store(false)
	s.h.stopping.Store(true)
	s.srv.Shutdown()
	if n := s.h.inflight.wait(recordGrace); n > 0 {
		s.h.log.Warn("shutdown: interrupted syncs did not record their outcome in time", zap.Int("syncs", n),
			zap.Duration("waited", recordGrace))
	}
}

// asynqLogger adapts zap to asynq. Only cmd/zsync exits the process, so
// asynq's Fatal logs at error level.
type asynqLogger struct{ *zap.SugaredLogger }

func (l asynqLogger) Fatal(args ...any) { l.SugaredLogger.Error(args...) }
