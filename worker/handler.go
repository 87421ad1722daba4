package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/zsync/zsync/internal/clip"
	"github.com/zsync/zsync/internal/logging"
	"github.com/zsync/zsync/internal/tracing"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/syncer"
)

// Syncer reconciles one subscription. key is the id as received; the
// Outcome names the Zuora subscription number once resolved.
type Syncer interface {
	Sync(ctx context.Context, key string, trig syncer.Trigger) (syncer.Outcome, error)
	// Canonical names the subscription behind any id form (its Zuora number
	// for a sub-… id or a Limio reference). Syncs requested under different
	// ids of one subscription then share one lock, so they never write at
	// once. A Syncer that can't tell returns key: the lock is per id as given.
	Canonical(ctx context.Context, key string) (string, error)
}

// handler runs sync tasks. ProcessTask is its single exit: every run that
// reaches the syncer (or fails on its way there) is recorded exactly once.
type handler struct {
	syncer  Syncer
	store   *OutcomeStore
	enq     *Enqueuer // hands a task's callouts on when it can't wait any longer
	rdb     redis.UniversalClient
	keys    keyspace
	cfg     Config
	log     *zap.Logger
	metrics Metrics
	tracer  trace.Tracer
	running runs // the syncs in flight, to stop them all when Redis lost its data
	// inflight counts the runs in ProcessTask, so that Shutdown can wait
	// for the interrupted ones to record; stopping is set once it began.
	inflight inflight
	stopping atomic.Bool
}

// taskRun is what process learned, for the record.
type taskRun struct {
	key       string
	trig      syncer.Trigger // as passed to the syncer
	epoch     int64          // the task's epoch, -1 when unknown
	outcome   syncer.Outcome
	waited    bool          // lock busy: put back, not recorded (unless a last attempt's hand-off failed)
	handedOff string        // the successor task, when the task gave up waiting
	notFound  bool          // in neither system: completed (not archived) with its outcome, epoch closed
	recorded  syncer.Result // the outcome finish recorded ("" when none: a wait)
	// noJobs: the advance under the lock saw no bulk job registered on the
	// key, so the record has no job to credit (advance.jobs).
	noJobs bool
	// lock is the subscription's lock while it is to be released: with the
	// record, in its round trip, or else when ProcessTask returns. Nil when
	// not taken, released, or held past the run (write_grace).
	lock *subLock
}

// attempt is what asynq tells a run about its task.
type attempt struct {
	queue, taskID     string
	retried, maxRetry int
}

func attemptOf(ctx context.Context) attempt {
	var a attempt
	a.queue, _ = asynq.GetQueueName(ctx)
	a.taskID, _ = asynq.GetTaskID(ctx)
	a.retried, _ = asynq.GetRetryCount(ctx)
	a.maxRetry, _ = asynq.GetMaxRetry(ctx)
	return a
}

// last reports whether asynq won't run the task again however this ends.
func (a attempt) last() bool { return a.retried >= a.maxRetry }

// ProcessTask implements asynq.Handler.
func (h *handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	defer h.inflight.enter()()
	start := time.Now()
	run := taskRun{epoch: -1}
	a := attemptOf(ctx)
	// Every line about the run, the syncer's too, names its task.
	ctx = logging.IntoContext(ctx, h.log.With(zap.String("task_id", a.taskID)))
	// The run continues the trace of the callout (or request) that enqueued it.
	ctx, span := h.tracer.Start(tracing.Extract(ctx, t.Headers()), "zsync.sync", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("zsync.queue", a.queue), attribute.Int("zsync.attempt", a.retried)))
	defer span.End()
	defer h.release(ctx, &run) // a lock the record didn't release (or a panic)
	err := h.process(ctx, t, a, &run)
	if isNotFound(err) {
		// Running it again would give the same answer, and archived tasks are
		// what operators and alerts treat as failures: it completes, with
		// not_found as its result, once its epoch is closed (a not-found
		// before the lock, while resolving the id, left it open).
		if cerr := h.closeEpoch(ctx, &run); cerr != nil {
			err = fmt.Errorf("%s not found, but closing its epoch failed: %w", run.key, cerr)
		} else {
			run.notFound = true
		}
	}
	h.finish(ctx, t, a, &run, start, err)
	span.SetAttributes(attribute.String("zsync.subscription", run.key), attribute.String("zsync.outcome", string(run.recorded)))
	if run.notFound {
		return nil
	}
	if err != nil && isFailure(err) {
		span.SetStatus(codes.Error, "sync failed") // the error text may quote upstream bodies: not in the span
	}
	return err
}

// closeEpoch closes the task's epoch if it is still current.
func (h *handler) closeEpoch(ctx context.Context, run *taskRun) error {
	if run.epoch < 0 || run.key == "" {
		return nil
	}
	_, err := runAdvance(ctx, h.rdb, h.keys, run.key, run.epoch, true)
	return err
}

func (h *handler) process(ctx context.Context, t *asynq.Task, a attempt, run *taskRun) error {
	p, err := decodePayload(t.Payload())
	if err != nil {
		// Nothing to retry: archived, recorded under the key its id names,
		// and handleError closes that epoch so later callouts aren't
		// swallowed by this task.
		run.key, run.epoch, _ = taskEpoch(a.taskID, t.Payload())
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	run.key, run.trig = p.Key, p.Trigger
	run.epoch = epochOf(a.taskID, p.Key)
	if a.last() && run.epoch >= 0 {
		// The last attempt: asynq won't run this task again however it ends
		// (after a crash the recoverer archives it without calling us), so
		// close its epoch first.
		if _, err := runAdvance(ctx, h.rdb, h.keys, p.Key, run.epoch, true); err != nil {
			return err
		}
	}

	lockKey, err := h.syncer.Canonical(ctx, p.Key)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", p.Key, err)
	}
	// Once the lock is held, callouts make a new task, which waits for this
	// lock: they may have been missed by the read of Zuora below.
	_, lockSpan := h.tracer.Start(ctx, "zsync.lock")
	l, adv, err := lockAndAdvance(ctx, h.rdb, h.keys, lockKey, p.Key, run.epoch, h.cfg.LockTTL)
	lockSpan.SetAttributes(attribute.Bool("zsync.lock.acquired", l != nil))
	lockSpan.End()
	run.lock = l // released with the record, or by ProcessTask
	if err != nil {
		return err
	}
	if l == nil {
		run.waited = true
		if a.last() {
			// asynq archives an exhausted task whatever isFailure says.
			return h.handOff(ctx, run)
		}
		return &lockBusyError{Key: p.Key, RetryIn: h.cfg.LockBusyDelay + rand.N(h.cfg.LockBusyDelay)}
	}
	run.noJobs = !adv.jobs
	if run.epoch >= 0 && hasOrder(run.trig) && adv.callouts != 1 {
		// Other callouts coalesced into this one (or we can't tell): their
		// changes may not be Limio's own, so the loop guard must not skip.
		run.trig = withoutOrder(run.trig)
	}

	syncCtx, stop := l.keep(ctx)
	syncCtx, cancelRun := context.WithCancelCause(syncCtx)
	forget := h.running.add(cancelRun)
	guard := &lockGuard{l: l}
	out, err := h.syncer.Sync(syncer.WithWriteGuard(syncCtx, guard), p.Key, run.trig)
	cause := context.Cause(syncCtx)
	forget()
	cancelRun(nil)
	stop()
	if guard.uncertainWrite() && h.holdLock(ctx, l, p.Key) {
		run.lock = nil // kept past the run for a write that may still land
	}
	run.outcome = out
	if err != nil {
		if errors.Is(cause, ErrLockLost) && !errors.Is(err, ErrLockLost) {
			err = fmt.Errorf("%w: %w", err, cause)
		}
		switch class := classify(err); {
		case archiveNow(class, a.retried):
			return fmt.Errorf("sync %s: %w: %w", p.Key, err, asynq.SkipRetry)
		case class == classThrottled && a.last():
			// Waiting for the upstream limit is not a failure, but asynq
			// archives a task on its last attempt whatever isFailure says.
			return h.handOff(ctx, run)
		}
		return fmt.Errorf("sync %s: %w", p.Key, err)
	}
	return nil
}

// release releases the run's lock if it still has one to release.
func (h *handler) release(ctx context.Context, run *taskRun) {
	if run.lock == nil {
		return
	}
	l := run.lock
	run.lock = nil
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := l.release(rctx); err != nil {
		logging.FromContext(ctx, h.log).Warn("release lock", zap.String("subscription", run.key), zap.Error(err))
	}
}

// holdLock keeps the lock for worker.write_grace after a Limio write whose
// outcome is unknown (it timed out, or the connection was lost after it was
// sent): the write may still land, and the next sync of the subscription
// must read Limio after it could have. The task is retried once the lock
// is free; callouts meanwhile make a task that waits for it. It reports
// whether the lock is held (then it must not be released).
func (h *handler) holdLock(ctx context.Context, l *subLock, key string) bool {
	if h.cfg.WriteGrace <= 0 {
		return false
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	ok, err := l.hold(hctx, h.cfg.WriteGrace)
	if err != nil || !ok {
		logging.FromContext(ctx, h.log).Warn("a Limio write's outcome is unknown, and the lock could not be held for it",
			zap.String("subscription", key), zap.Bool("lock_ours", ok), zap.Error(err))
		return false
	}
	logging.FromContext(ctx, h.log).Warn("a Limio write's outcome is unknown; the subscription's lock is held for worker.write_grace before the next sync",
		zap.String("subscription", key), zap.Duration("write_grace", h.cfg.WriteGrace))
	return true
}

// handOff ends a task that has no retries left while it waits (for the lock,
// or for the upstream limit): asynq would archive it and the callouts
// coalesced into it would be lost. It closes the task's epoch if still open
// and enqueues a successor carrying them.
func (h *handler) handOff(ctx context.Context, run *taskRun) error {
	adv, err := runAdvance(ctx, h.rdb, h.keys, run.key, run.epoch, true)
	if err != nil {
		return err
	}
	trig := run.trig
	if hasOrder(trig) && adv.callouts != 1 {
		trig = withoutOrder(trig)
	}
	queue, _ := asynq.GetQueueName(ctx)
	status, id, err := h.enq.Enqueue(ctx, run.key, trig, queue)
	if err != nil {
		return fmt.Errorf("hand off %s: %w", run.key, err)
	}
	run.handedOff = id
	return fmt.Errorf("%s waiting with no retries left; handed off to task %s (%s): %w",
		run.key, id, status, asynq.RevokeTask)
}

// finish ends the run in controller-runtime's shape: decide what its end
// means (decide, pure), record it when it is an outcome (record), then log
// and count it (report). Lock waits and upstream-limit waits are not
// outcomes: they are only reported.
func (h *handler) finish(ctx context.Context, t *asynq.Task, a attempt, run *taskRun, start time.Time, err error) {
	v := decide(run, a, start, time.Since(start), err, errors.Is(ctx.Err(), context.Canceled), h.stopping.Load())
	if v.kind == endOutcome {
		h.record(ctx, v, a, run)
		run.recorded = v.rec.Outcome
	}
	h.report(ctx, a, run, v, err)
}

// endKind is what a run's end means.
type endKind int

const (
	endOutcome   endKind = iota // an outcome: recorded, credited to jobs, shown in asynqmon
	endLockWait                 // put back (or handed off) while the lock was busy
	endThrottled                // put back until the upstream limit allows: the next attempt records
)

// verdict is decide's answer.
type verdict struct {
	kind     endKind
	rec      Record        // endOutcome: what is recorded
	level    zapcore.Level // endOutcome: of the log line
	requeued bool          // endOutcome: asynq runs the task again (shutdown, lost lease)
	resolved bool          // endOutcome: the syncer read the subscription's number from Zuora
	d        time.Duration
}

// decide says what the end of a run means, from what the run learned, what
// asynq told it (a), the error it ends with and whether its context was
// cancelled (canceled) while the worker shuts down (stopping). No side
// effects: finish acts on the answer.
func decide(run *taskRun, a attempt, start time.Time, d time.Duration, err error, canceled, stopping bool) verdict {
	// A wait on the last attempt that could not hand off ends archived, with
	// its callouts: that is an outcome (failed, archived, at Error level), so
	// an operator sees it and can run the task again from asynqmon.
	handOffFailed := run.waited && run.handedOff == "" && err != nil && a.last()
	if (run.waited || run.handedOff != "") && !handOffFailed {
		return verdict{kind: endLockWait, d: d}
	}
	class := classify(err)
	if err != nil && class == classThrottled {
		// Waiting for the upstream limit is not an outcome (throttles are
		// counted by the metrics).
		return verdict{kind: endThrottled, d: d}
	}
	out := run.outcome
	rec := Record{
		Subscription:   out.Subscription,
		Key:            run.key,
		LimioID:        out.LimioID,
		Outcome:        out.Result,
		Changes:        out.Changes,
		Reason:         out.Reason,
		At:             start.UTC(),
		DurationMS:     d.Milliseconds(),
		TaskID:         a.taskID,
		Queue:          a.queue,
		Attempt:        a.retried,
		Epoch:          run.epoch,
		Trigger:        run.trig,
		NotificationID: run.trig.NotificationID,
	}
	if rec.Subscription == "" {
		rec.Subscription = run.key
	}
	v := verdict{kind: endOutcome, level: zapcore.InfoLevel, d: d}
	switch {
	case err == nil:
		if rec.Outcome == "" {
			rec.Outcome = syncer.Unchanged
		}
		// Only these read Zuora (a loop-guard skip reads nothing).
		v.resolved = out.Subscription != "" && (out.Result == syncer.Created || out.Result == syncer.Updated || out.Result == syncer.Unchanged)
	case isNotFound(err):
		rec.Outcome, rec.Error, v.level = syncer.NotFound, errorText(err), zapcore.WarnLevel
	default:
		rec.Outcome, rec.Error, v.level = syncer.Failed, errorText(err), zapcore.WarnLevel
	}
	// asynq cancels a run's context when it stops (shutdown) or loses the
	// task's lease, and runs the task again: neither archived nor over.
	v.requeued = err != nil && canceled
	if v.requeued && stopping {
		rec.Error = "interrupted by the worker's shutdown, to be retried: " + rec.Error
	}
	if err != nil && !v.requeued && !run.notFound && (class == classPermanent || a.last()) {
		rec.Archived = true
		if rec.Outcome == syncer.Failed {
			v.level = zapcore.ErrorLevel
		}
	}
	v.rec = rec
	return v
}

// record stores an outcome and, in the same round trip, after it, leaves a
// summary as the task's result and releases the run's lock (so the next run
// of the subscription finds the outcome recorded); then it credits the resync
// jobs waiting on its key (unless the task runs again, or the run saw none
// registered).
func (h *handler) record(ctx context.Context, v verdict, a attempt, run *taskRun) {
	rec := v.rec
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var rel *redis.Cmd
	serr := h.store.record(sctx, rec, v.resolved, func(pipe redis.Pipeliner) {
		if b, err := json.Marshal(newTaskResult(rec)); err == nil && a.queue != "" && a.taskID != "" {
			// What t.ResultWriter() writes (one HSET on asynq's connection),
			// in this round trip instead: best effort, as it is, but only
			// into the task's hash as it exists (writeResultScript).
			writeResultScript.Eval(sctx, pipe, []string{asynqTaskKey(a.queue, a.taskID)}, b)
		}
		if run.lock != nil {
			rel = run.lock.releaseIn(sctx, pipe)
		}
	})
	if serr != nil {
		logging.FromContext(ctx, h.log).Warn("record outcome", zap.String("subscription", rec.Subscription), zap.Error(serr))
	}
	if serr == nil && rel != nil && rel.Err() == nil {
		run.lock = nil // else (NOSCRIPT on a fresh Redis, an error) ProcessTask releases it
	}
	if !v.requeued && !run.noJobs {
		// With a deadline of its own: Record may have used up sctx's.
		jctx, jcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		h.settleJobs(jctx, rec)
		jcancel()
	}
}

// report logs the run's end (through the task's logger) and counts it.
func (h *handler) report(ctx context.Context, a attempt, run *taskRun, v verdict, err error) {
	log := logging.FromContext(ctx, h.log)
	switch v.kind {
	case endLockWait:
		if run.waited {
			h.metrics.LockBusy(a.queue)
		}
		log.Debug("subscription locked; task put back", zap.String("subscription", run.key),
			zap.String("successor", run.handedOff), zap.Error(err))
	case endThrottled:
		log.Debug("upstream limit; task put back", zap.String("subscription", run.key),
			zap.Duration("retry_after", upstream.RetryAfter(err)), zap.Error(err))
	case endOutcome:
		rec := v.rec
		h.metrics.TaskDone(a.queue, rec.Outcome, v.d)
		ce := log.Check(v.level, "sync")
		if ce == nil {
			return
		}
		fields := []zap.Field{
			zap.String("subscription", rec.Subscription),
			zap.Int("attempt", a.retried),
			zap.String("outcome", string(rec.Outcome)),
			zap.Duration("duration", v.d),
			zap.String("queue", a.queue),
			zap.Int64("epoch", run.epoch),
		}
		if len(rec.Changes) > 0 {
			fields = append(fields, zap.Int("changes", len(rec.Changes)))
		}
		if err != nil {
			fields = append(fields, zap.String("error", rec.Error), zap.Bool("archived", rec.Archived), zap.Bool("requeued", v.requeued))
		}
		ce.Write(fields...)
	}
}

// handleError is asynq's ErrorHandler. When a task is about to be archived
// before it closed its epoch (a deadline or lost lease while waiting on Redis,
// a Redis error on the last attempt), it closes the epoch so that the archived
// task id doesn't swallow later callouts.
func (h *handler) handleError(ctx context.Context, t *asynq.Task, err error) {
	if errors.Is(err, asynq.RevokeTask) {
		return
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	// Close the epoch when the task is archived now, and already when the
	// attempt that follows is its last: if that attempt dies with its worker
	// before it runs, the recoverer archives it without calling us, and the
	// archived task id would swallow every later callout.
	final := errors.Is(err, asynq.SkipRetry) || retried >= maxRetry || (isFailure(err) && retried+1 >= maxRetry)
	if !final {
		return
	}
	id, _ := asynq.GetTaskID(ctx)
	key, epoch, ok := taskEpoch(id, t.Payload())
	if !ok {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	adv, aerr := runAdvance(actx, h.rdb, h.keys, key, epoch, true)
	switch {
	case aerr != nil:
		h.log.Error("archived task could not close its epoch; callouts for the subscription coalesce into it until it is deleted or re-run",
			zap.String("subscription", key), zap.String("task_id", id), zap.Error(aerr))
	case adv.advanced:
		h.log.Info("task on its last attempt closed its epoch", zap.String("subscription", key), zap.String("task_id", id))
	}
}

// errorText is err's message as people read it (outcome records, asynqmon,
// logs): without the ": skip retry for the task" that wrapping asynq's
// control errors appends, which says nothing about the failure (Archived
// says whether it will be retried).
func errorText(err error) string {
	s := err.Error()
	for _, control := range []error{asynq.SkipRetry, asynq.RevokeTask} {
		s = strings.ReplaceAll(s, ": "+control.Error(), "")
	}
	return s
}

// taskResult is what a task keeps as its result, shown by asynqmon on every
// completed row: a summary, so a row stays one line. The full record, with
// every change, is in the outcome store (zsync status, GET
// /v1/subscriptions/{id}/sync).
type taskResult struct {
	Outcome      syncer.Result `json:"outcome"`
	Subscription string        `json:"subscription"`
	LimioID      string        `json:"limio_id,omitempty"`
	Changes      int           `json:"changes"`
	Reason       string        `json:"reason,omitempty"`
	Error        string        `json:"error,omitempty"`
	Attempt      int           `json:"attempt"`
	DurationMS   int64         `json:"duration_ms"`
}

// maxResultError keeps a long error (an upstream body) from filling the row.
const maxResultError = 300

func newTaskResult(r Record) taskResult {
	res := taskResult{Outcome: r.Outcome, Subscription: r.Subscription, LimioID: r.LimioID, Changes: len(r.Changes),
		Reason: r.Reason, Error: r.Error, Attempt: r.Attempt, DurationMS: r.DurationMS}
	res.Error = clip.To(res.Error, maxResultError)
	return res
}
