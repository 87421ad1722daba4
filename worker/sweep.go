package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/field"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/zuora"
)

// Periodic sweep (docs/design.md "Flows"): Zuora gives up on a callout after
// its retries, so on a schedule zsync asks Zuora which subscriptions changed
// since the last successful sweep and enqueues them through the same epoch
// dedup as callouts.
//
// Every worker process runs an asynq Scheduler with the sweep entry, so the
// sweep survives the loss of any process. Several schedulers must still give
// one sweep per tick. asynq's Scheduler enqueues the same task and options on
// every tick (scheduler.go, enqueueJob.Run), so a TaskID can't name the tick,
// and a fixed TaskID would block the entry for good once a sweep is archived
// (asynq #842). Instead:
//   - the task is Unique for one interval: ticks while a sweep waits or
//     retries are rejected as duplicates;
//   - "@every" schedules tick relative to each scheduler's start, so two
//     processes tick at different moments; the handler therefore sweeps at
//     most once per schedule window (the wall clock truncated to the interval)
//     and a tick whose window was already swept is a no-op;
//   - a Redis lock keeps two sweeps from running at once.
//
// The state, one hash <prefix>sweep, holds the high-water mark: the next sweep
// asks for changes at or after it. It moves only when a sweep succeeded, to
// that sweep's start minus Overlap (clock skew between zsync and Zuora's
// UpdatedDate); a failed sweep leaves it and asynq retries the task.

// TaskTypeSweep is the asynq type of the periodic sweep task.
const TaskTypeSweep = "zsync:sweep"

const (
	defaultSweepSchedule = "@every 15m"
	defaultSweepOverlap  = time.Minute
	defaultSweepMaxRetry = 5
	defaultSweepTimeout  = 10 * time.Minute
	defaultSweepLockTTL  = 30 * time.Second
)

// SweepConfig configures the Sweeper. Zero values take the defaults.
type SweepConfig struct {
	Schedule string        // asynq scheduler spec: cron ("*/15 * * * *") or "@every 15m"; required (DefaultSweepConfig: every 15m)
	Lookback time.Duration // the first sweep asks for changes since now - Lookback; default one interval
	Overlap  time.Duration // the mark is set to a sweep's start minus this; default 1m
	Prefix   string        // Redis key prefix; default "zsync:"
	Queue    string        // queue of the sweep task and of the syncs it enqueues; default bulk
	MaxRetry int           // retries of a failed sweep; default 5
	Timeout  time.Duration // per sweep attempt; default 10m
	LockTTL  time.Duration // the sweep lock, extended while a sweep runs; default 30s
}

// DefaultSweepConfig is every default of the sweep zsync runs (config/ takes
// its defaults from here). Lookback zero is one schedule interval.
func DefaultSweepConfig() SweepConfig {
	return SweepConfig{Schedule: defaultSweepSchedule, Overlap: defaultSweepOverlap, Prefix: DefaultPrefix, Queue: QueueBulk,
		MaxRetry: defaultSweepMaxRetry, Timeout: defaultSweepTimeout, LockTTL: defaultSweepLockTTL}
}

// withDefaults fills zero values (but Schedule) from DefaultSweepConfig; a
// zero Lookback becomes interval.
func (c SweepConfig) withDefaults(interval time.Duration) SweepConfig {
	d := DefaultSweepConfig()
	if c.Lookback == 0 {
		c.Lookback = interval
	}
	c.Overlap = cmp.Or(c.Overlap, d.Overlap)
	c.Prefix = cmp.Or(c.Prefix, d.Prefix)
	c.Queue = cmp.Or(c.Queue, d.Queue)
	c.MaxRetry = cmp.Or(max(c.MaxRetry, 0), d.MaxRetry)
	c.Timeout = cmp.Or(max(c.Timeout, 0), d.Timeout)
	c.LockTTL = cmp.Or(max(c.LockTTL, 0), d.LockTTL)
	return c
}

// Validate reports every invalid field, by name.
func (c SweepConfig) Validate() error {
	var errs field.Errors
	if _, err := scheduleInterval(c.Schedule, time.Now()); err != nil {
		errs.Add("Schedule", "%v", err)
	}
	if c.Lookback < 0 {
		errs.Add("Lookback", "must not be negative (0: one interval), got %s", c.Lookback)
	}
	if c.Overlap < 0 {
		errs.Add("Overlap", "must not be negative, got %s", c.Overlap)
	}
	return errs.Err()
}

// SweepState is what the sweep keeps in Redis.
type SweepState struct {
	Mark        time.Time `json:"mark"`         // the next sweep asks for changes since this; zero before the first
	Window      time.Time `json:"window"`       // the schedule window last swept
	LastSuccess time.Time `json:"last_success"` // start of the last successful sweep
	Enqueued    int64     `json:"enqueued"`     // of the last successful sweep: new tasks
	Coalesced   int64     `json:"coalesced"`    // and ids that joined a waiting task
	// Rejected is why Zuora refused the last sweep's query (cleared by the
	// next success): a permanent error, not retried.
	Rejected string `json:"rejected,omitempty"`
}

// SweepRejectMetrics is told about a sweep whose query Zuora refused. A
// SweepMetrics that also implements it receives them.
type SweepRejectMetrics interface {
	SweepRejected()
}

// SweepMetrics is told about each sweep that ran (not the no-op ticks). A
// Metrics passed with WithMetrics that also implements it receives them.
type SweepMetrics interface {
	Sweep(ok bool, subscriptions int, d time.Duration)
}

// Sweeper runs the sweep task. Register it with Server.Handle(TaskTypeSweep, s)
// and start its Scheduler in every worker process.
type Sweeper struct {
	src      SweepSource
	enq      *Enqueuer
	rdb      redis.UniversalClient
	cfg      SweepConfig
	interval time.Duration
	keys     keyspace
	log      *zap.Logger
	metrics  SweepMetrics
	now      func() time.Time
}

// AccountQuerier finds the accounts whose Account or Contact records changed
// (*zuora.Client): a contact edit changes no subscription.
type AccountQuerier interface {
	ChangedAccounts(ctx context.Context, since time.Time, fn func(accountKey string) error) error
}

// SweepSource is what the sweep asks Zuora (*zuora.Client).
type SweepSource interface {
	SubscriptionQuerier
	AccountQuerier
}

// NewSweeper returns a Sweeper that queries src (*zuora.Client) and enqueues
// through enq. rdb must be the Redis of enq.
func NewSweeper(src SweepSource, enq *Enqueuer, rdb redis.UniversalClient, cfg SweepConfig,
	logger *zap.Logger, opts ...Option) (*Sweeper, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	interval, err := scheduleInterval(cfg.Schedule, time.Now())
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(interval)
	s := &Sweeper{src: src, enq: enq, rdb: rdb, cfg: cfg, interval: interval,
		keys: keyspace{cfg.Prefix}, log: logger.Named("sweep"), now: time.Now}
	if m, ok := applyOptions(opts).metrics.(SweepMetrics); ok {
		s.metrics = m
	}
	return s, nil
}

// scheduleInterval is the time between two ticks of spec, parsed the way
// asynq's Scheduler parses it (robfig/cron's standard parser).
func scheduleInterval(spec string, now time.Time) (time.Duration, error) {
	if spec == "" {
		return 0, errors.New("is empty")
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", spec, err)
	}
	if cd, ok := sched.(cron.ConstantDelaySchedule); ok {
		return cd.Delay, nil
	}
	a := sched.Next(now)
	b := sched.Next(a)
	if a.IsZero() || !b.After(a) {
		return 0, fmt.Errorf("%q never fires", spec)
	}
	return b.Sub(a), nil
}

// Interval is the time between two ticks of the schedule.
func (s *Sweeper) Interval() time.Duration { return s.interval }

// task is what the scheduler enqueues on every tick.
func (s *Sweeper) task() (*asynq.Task, []asynq.Option) {
	return asynq.NewTask(TaskTypeSweep, nil), []asynq.Option{
		asynq.Queue(s.cfg.Queue),
		asynq.Unique(max(s.interval, time.Second)),
		asynq.MaxRetry(s.cfg.MaxRetry),
		asynq.Timeout(s.cfg.Timeout),
	}
}

// Enqueue does what one scheduler tick does (an operator's "sweep now", tests).
func (s *Sweeper) Enqueue(ctx context.Context, client *asynq.Client) (*asynq.TaskInfo, error) {
	task, opts := s.task()
	return client.EnqueueContext(ctx, task, opts...)
}

// Scheduler returns an asynq scheduler that enqueues the sweep on the
// schedule. Start it after the worker server and Shutdown it before; it uses
// its own Redis connection from redisOpt.
func (s *Sweeper) Scheduler(redisOpt asynq.RedisConnOpt) (*asynq.Scheduler, error) {
	sch := asynq.NewScheduler(redisOpt, &asynq.SchedulerOpts{
		Logger:   asynqLogger{s.log.Named("scheduler").Sugar()},
		LogLevel: asynq.WarnLevel,
		PostEnqueueFunc: func(info *asynq.TaskInfo, err error) {
			switch {
			case err == nil:
				s.log.Debug("sweep enqueued", zap.String("task_id", info.ID))
			case errors.Is(err, asynq.ErrDuplicateTask):
				// Another process's tick, or a sweep still retrying.
				s.log.Debug("sweep tick: a sweep is already waiting")
			default:
				s.log.Warn("sweep tick: enqueue failed", zap.Error(err))
			}
		},
	})
	task, opts := s.task()
	if _, err := sch.Register(s.cfg.Schedule, task, opts...); err != nil {
		return nil, fmt.Errorf("sweep.schedule %q: %w", s.cfg.Schedule, err)
	}
	return sch, nil
}

// ProcessTask implements asynq.Handler: one sweep, unless this schedule
// window was swept already or another sweep is running.
func (s *Sweeper) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	start := s.now()
	window := start.Truncate(s.interval)
	st, err := s.State(ctx)
	if err != nil {
		return err
	}
	if !st.Window.Before(window) {
		s.log.Debug("sweep: window already swept", zap.Time("window", window))
		return nil
	}
	l, err := tryLock(ctx, s.rdb, s.keys.sweepLock(), s.cfg.LockTTL)
	if err != nil {
		return err
	}
	if l == nil {
		// The running sweep covers this tick; if it fails, asynq retries it.
		s.log.Debug("sweep: another sweep is running")
		return nil
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.release(rctx); err != nil {
			s.log.Warn("sweep: release lock", zap.Error(err))
		}
	}()
	// Read again under the lock: a sweep may have finished meanwhile.
	if st, err = s.State(ctx); err != nil {
		return err
	}
	if !st.Window.Before(window) {
		return nil
	}
	since := st.Mark
	if since.IsZero() {
		since = start.Add(-s.cfg.Lookback)
	}

	sctx, stop := l.keep(ctx)
	if n, err := releaseArchived(sctx, s.rdb, s.keys, QueueCallouts, QueueBulk); err != nil {
		s.log.Warn("sweep: release the epochs of archived tasks", zap.Error(err))
	} else if n > 0 {
		s.log.Warn("sweep: archived tasks held their subscriptions' epochs; released", zap.Int("tasks", n))
	}
	enq, coal, err := s.sweep(sctx, since)
	if cause := context.Cause(sctx); err != nil && errors.Is(cause, ErrLockLost) {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	stop()
	d := s.now().Sub(start)
	if err != nil && rejected(err) {
		// Retrying asks the same question again: fail loudly, once.
		if m, ok := s.metrics.(SweepRejectMetrics); ok {
			m.SweepRejected()
		}
		_ = s.rdb.HSet(context.WithoutCancel(ctx), s.keys.sweep(), "rejected", err.Error()).Err()
		s.log.Error("sweep: Zuora rejected the query; the mark stays until it is fixed", zap.Time("since", since),
			zap.Error(err))
		return fmt.Errorf("sweep since %s: query rejected: %w: %w", since.UTC().Format(time.RFC3339), err, asynq.SkipRetry)
	}
	if err != nil {
		s.observe(false, enq+coal, d)
		s.log.Warn("sweep failed; the mark stays", zap.Time("since", since), zap.Int("enqueued", enq),
			zap.Int("coalesced", coal), zap.Duration("duration", d), zap.Error(err))
		return fmt.Errorf("sweep since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	mark := start.Add(-s.cfg.Overlap)
	if err := commitScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.keys.sweep()},
		mark.UnixMilli(), window.UnixMilli(), start.UnixMilli(), enq, coal).Err(); err != nil {
		// The enqueued syncs stand; the next sweep asks again from the old mark.
		return fmt.Errorf("sweep: record the mark: %w", err)
	}
	s.observe(true, enq+coal, d)
	s.log.Info("sweep", zap.Time("since", since), zap.Time("mark", mark), zap.Int("enqueued", enq),
		zap.Int("coalesced", coal), zap.Duration("duration", d))
	return nil
}

// sweep enqueues every subscription Zuora changed since, every termed
// subscription whose term ended since (a lapse changes nothing in Zuora, but
// Limio must show the subscription expired), and a fan-out to the
// subscriptions of every account whose account or contact records changed
// since (a contact edit changes no subscription).
func (s *Sweeper) sweep(ctx context.Context, since time.Time) (enqueued, coalesced int, err error) {
	return sweepSince(ctx, s.src, s.enq, s.cfg.Queue, s.log, since, s.now())
}

// sweepSince is one sweep's work, shared with the catch-up after a Redis
// data loss (catchup.go).
func sweepSince(ctx context.Context, src SweepSource, e *Enqueuer, queue string, log *zap.Logger,
	since, now time.Time) (enqueued, coalesced int, err error) {
	trig := syncer.Trigger{Source: syncer.SourceSweep}
	count := func(st EnqueueStatus, err error, what, key string) error {
		switch {
		case errors.Is(err, errInvalidKey):
			// Not ours to sync; failing the sweep would stall the mark forever.
			log.Warn("sweep: skipping an invalid "+what, zap.String(what, key))
			return nil
		case err != nil:
			return err
		case st == Coalesced:
			coalesced++
		default:
			enqueued++
		}
		return nil
	}
	enq := func(number string) error {
		st, _, err := e.Enqueue(ctx, number, trig, queue)
		return count(st, err, "subscription", number)
	}
	if err := src.QuerySubscriptions(ctx, zuora.SubscriptionQuery{UpdatedSince: since}, enq); err != nil {
		return enqueued, coalesced, err
	}
	// A term lapses when its termEndDate begins (the first day outside the
	// term): ask once per day rolled over since the last sweep, for the
	// terms that ended on those days.
	from, to := since.UTC().AddDate(0, 0, 1).Format(time.DateOnly), now.UTC().Format(time.DateOnly)
	if from <= to {
		if err := src.QuerySubscriptions(ctx, zuora.SubscriptionQuery{TermEndFrom: from, TermEndTo: to}, enq); err != nil {
			return enqueued, coalesced, err
		}
	}
	err = src.ChangedAccounts(ctx, since, func(account string) error {
		st, _, err := e.EnqueueAccount(ctx, account, trig, queue)
		return count(st, err, "account", account)
	})
	return enqueued, coalesced, err
}

// rejected: Zuora refused the sweep's query itself (a permanent Zuora error,
// e.g. a ZOQL fault, or its credentials), as opposed to a failure worth
// retrying: the next scheduled sweep asks again.
func rejected(err error) bool {
	var e *upstream.Error
	return errors.As(err, &e) && e.API == "zuora" && (e.Kind == upstream.Permanent || e.Kind == upstream.Unauthorized)
}

func (s *Sweeper) observe(ok bool, n int, d time.Duration) {
	if s.metrics != nil {
		s.metrics.Sweep(ok, n, d)
	}
}

// commitScript records a successful sweep; mark and window only move forward.
var commitScript = redis.NewScript(`
local function raise(field, v)
  local cur = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if tonumber(v) > cur then redis.call('HSET', KEYS[1], field, v) end
end
raise('mark', ARGV[1])
raise('window', ARGV[2])
redis.call('HSET', KEYS[1], 'last', ARGV[3], 'enqueued', ARGV[4], 'coalesced', ARGV[5])
redis.call('HDEL', KEYS[1], 'rejected')
return 1
`)

// State reads the sweep's state.
func (s *Sweeper) State(ctx context.Context) (SweepState, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.sweep()).Result()
	if err != nil {
		return SweepState{}, fmt.Errorf("read sweep state: %w", err)
	}
	ms := func(k string) time.Time {
		v, err := strconv.ParseInt(m[k], 10, 64)
		if err != nil || v <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(v).UTC()
	}
	n := func(k string) int64 {
		v, _ := strconv.ParseInt(m[k], 10, 64)
		return v
	}
	return SweepState{Mark: ms("mark"), Window: ms("window"), LastSuccess: ms("last"),
		Enqueued: n("enqueued"), Coalesced: n("coalesced"), Rejected: m["rejected"]}, nil
}
