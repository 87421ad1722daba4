package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap/zapcore"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/syncer"
)

// What the end of a run means, decided without Redis: which ends are
// outcomes, which are archived, at what level they are logged.
func TestDecide(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	first := attempt{queue: QueueCallouts, taskID: "A‑S1:0", retried: 0, maxRetry: 3}
	last := attempt{queue: QueueCallouts, taskID: "A‑S1:0", retried: 3, maxRetry: 3}
	retryable := fmt.Errorf("sync A-S1: %w", &upstream.Error{API: "zuora", Kind: upstream.Retryable, Message: "flaky"})
	throttled := fmt.Errorf("sync A-S1: %w", &upstream.Error{API: "zuora", Kind: upstream.Throttled, Message: "429"})
	permanent := fmt.Errorf("sync A-S1: %w: %w", syncer.Permanent(errors.New("bad data")), asynq.SkipRetry)
	notFound := fmt.Errorf("sync A-S1: %w", syncer.Permanent(syncer.ErrNotFound))
	for _, tt := range []struct {
		name               string
		run                taskRun
		a                  attempt
		err                error
		canceled, stopping bool
		kind               endKind
		outcome            syncer.Result
		archived, requeued bool
		resolved           bool // the record names a subscription Zuora answered for: no alias lookup
		level              zapcore.Level
		errHas             string
	}{
		{name: "updated", run: taskRun{key: "A-S1", outcome: syncer.Outcome{Subscription: "A-S1", Result: syncer.Updated}}, a: first,
			kind: endOutcome, outcome: syncer.Updated, resolved: true, level: zapcore.InfoLevel},
		{name: "unchanged", run: taskRun{key: "A-S1", outcome: syncer.Outcome{Subscription: "A-S1", Result: syncer.Unchanged}}, a: first,
			kind: endOutcome, outcome: syncer.Unchanged, resolved: true, level: zapcore.InfoLevel},
		{name: "skipped reads no Zuora", run: taskRun{key: "A-S1", outcome: syncer.Outcome{Subscription: "A-S1", Result: syncer.Skipped}}, a: first,
			kind: endOutcome, outcome: syncer.Skipped, level: zapcore.InfoLevel},
		{name: "no result reads unchanged", run: taskRun{key: "A-S1"}, a: first,
			kind: endOutcome, outcome: syncer.Unchanged, level: zapcore.InfoLevel},
		{name: "lock wait", run: taskRun{key: "A-S1", waited: true}, a: first, err: &lockBusyError{Key: "A-S1"},
			kind: endLockWait},
		{name: "handed off", run: taskRun{key: "A-S1", waited: true, handedOff: "A‑S1:1"}, a: last, err: asynq.RevokeTask,
			kind: endLockWait},
		{name: "hand-off failed on the last attempt", run: taskRun{key: "A-S1", waited: true}, a: last, err: errors.New("redis down"),
			kind: endOutcome, outcome: syncer.Failed, archived: true, level: zapcore.ErrorLevel},
		{name: "throttled", run: taskRun{key: "A-S1"}, a: first, err: throttled, kind: endThrottled},
		{name: "retryable", run: taskRun{key: "A-S1"}, a: first, err: retryable,
			kind: endOutcome, outcome: syncer.Failed, level: zapcore.WarnLevel, errHas: "flaky"},
		{name: "retryable on the last attempt", run: taskRun{key: "A-S1"}, a: last, err: retryable,
			kind: endOutcome, outcome: syncer.Failed, archived: true, level: zapcore.ErrorLevel},
		{name: "permanent", run: taskRun{key: "A-S1"}, a: first, err: permanent,
			kind: endOutcome, outcome: syncer.Failed, archived: true, level: zapcore.ErrorLevel, errHas: "bad data"},
		{name: "not found completes", run: taskRun{key: "A-S1", notFound: true}, a: first, err: notFound,
			kind: endOutcome, outcome: syncer.NotFound, level: zapcore.WarnLevel},
		{name: "lease lost", run: taskRun{key: "A-S1"}, a: last, err: context.Canceled, canceled: true,
			kind: endOutcome, outcome: syncer.Failed, requeued: true, level: zapcore.WarnLevel},
		{name: "interrupted by shutdown", run: taskRun{key: "A-S1"}, a: last, err: context.Canceled, canceled: true, stopping: true,
			kind: endOutcome, outcome: syncer.Failed, requeued: true, level: zapcore.WarnLevel, errHas: "interrupted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			run := tt.run
			run.epoch = 4
			v := decide(&run, tt.a, start, time.Second, tt.err, tt.canceled, tt.stopping)
			if v.kind != tt.kind {
				t.Fatalf("kind = %v; want %v", v.kind, tt.kind)
			}
			if v.kind != endOutcome {
				return
			}
			r := v.rec
			if r.Outcome != tt.outcome || r.Archived != tt.archived || v.requeued != tt.requeued || v.level != tt.level {
				t.Errorf("= %s archived=%v requeued=%v level %v; want %s %v %v %v",
					r.Outcome, r.Archived, v.requeued, v.level, tt.outcome, tt.archived, tt.requeued, tt.level)
			}
			if v.resolved != tt.resolved {
				t.Errorf("resolved = %v; want %v", v.resolved, tt.resolved)
			}
			if !strings.Contains(r.Error, tt.errHas) || (tt.err == nil) != (r.Error == "") {
				t.Errorf("error %q; want one with %q", r.Error, tt.errHas)
			}
			if r.Subscription != "A-S1" || r.TaskID != tt.a.taskID || r.Attempt != tt.a.retried || r.Epoch != 4 ||
				!r.At.Equal(start) || r.DurationMS != 1000 {
				t.Errorf("record %+v; want its task, attempt, epoch and timing", r)
			}
		})
	}
}
