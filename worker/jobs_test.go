package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/zuora"
)

func (e *testEnv) jobs(mod func(*JobsConfig)) *Jobs {
	cfg := JobsConfig{Prefix: e.cfg.Prefix}
	if mod != nil {
		mod(&cfg)
	}
	return NewJobs(e.rdb, e.enq, cfg, e.log)
}

// runJob creates and runs a job from src.
func runJob(t *testing.T, j *Jobs, src IDSource) JobProgress {
	t.Helper()
	p, err := j.Create(t.Context(), "test")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	p, err = j.Run(t.Context(), p.ID, src)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return p
}

func waitJob(t *testing.T, j *Jobs, id string, within time.Duration) JobProgress {
	t.Helper()
	var p JobProgress
	waitFor(t, within, "job "+id+" finished", func() bool {
		var err error
		if p, err = j.Progress(t.Context(), id); err != nil {
			t.Fatalf("Progress: %v", err)
		}
		return p.Finished()
	})
	return p
}

func numbers(from, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("A-S%08d", from+i)
	}
	return ids
}

// A job counts what it read, refused and enqueued, and is done once every id
// has a final outcome from the worker's recording exit.
func TestBulkJobProgressAndOutcomes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	ids := numbers(1, 40)
	for _, k := range ids[:10] {
		e.fake.bump(k) // Zuora moved on: these update
	}
	e.fake.failNext(ids[20], syncer.Permanent(errors.New("boom: bad data")))
	e.fake.failNext(ids[21], &upstream.Error{API: "zuora", Kind: upstream.Retryable, Message: "flaky"}) // retried, then fine
	input := strings.Join(ids, "\n") + "\n\n# a comment\nbad id\n a-s1 \n" + ids[30] + " # duplicate\n"
	j := e.jobs(func(c *JobsConfig) { c.BatchSize = 7; c.Workers = 3 })
	p := runJob(t, j, LinesSource(strings.NewReader(input)))
	if p.State != JobEnqueued && p.State != JobDone {
		t.Fatalf("state after Run = %q", p.State)
	}
	if p.Read != 43 || p.Invalid != 2 || p.Enqueued+p.Coalesced != 41 {
		t.Fatalf("read %d invalid %d enqueued %d coalesced %d; want 43, 2, 41 in all", p.Read, p.Invalid, p.Enqueued, p.Coalesced)
	}
	if len(p.InvalidIDs) != 2 || p.InvalidIDs[0] != "bad id" || p.InvalidIDs[1] != "a-s1" {
		t.Errorf("invalid ids = %q", p.InvalidIDs)
	}
	if p.Done.Total() != 0 {
		t.Errorf("done before any worker ran: %+v", p.Done)
	}

	e.startServer(t)
	p = waitJob(t, j, p.ID, 20*time.Second)
	if p.State != JobDone || p.Pending != 0 || p.FinishedAt == nil {
		t.Fatalf("progress = %+v; want done, nothing pending", p)
	}
	want := JobOutcomes{Updated: 10, Unchanged: 30, Failed: 1}
	if p.Done != want {
		t.Errorf("done = %+v; want %+v", p.Done, want)
	}
	if len(p.Failures) != 1 || p.Failures[0].ID != ids[20] || !strings.Contains(p.Failures[0].Error, "boom") {
		t.Errorf("failures = %+v; want %s with its error", p.Failures, ids[20])
	}
}

// A key that coalesces into a task someone else made (the sweep's, another
// job's) is credited when that task ends. (asynq task ids are unique per
// queue, so a bulk key never coalesces into a callouts-queue task: it gets a
// bulk task of the same epoch, and both run.)
func TestBulkCoalescedIntoOtherTaskIsCounted(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000777"
	e.fake.bump(key)
	if st, _, err := e.enq.Enqueue(t.Context(), key, syncer.Trigger{Source: syncer.SourceSweep}, QueueBulk); err != nil || st != Enqueued {
		t.Fatalf("sweep enqueue: %s %v", st, err)
	}
	j := e.jobs(nil)
	p := runJob(t, j, ListSource([]string{key}))
	if p.Coalesced != 1 || p.Enqueued != 0 || p.State != JobEnqueued {
		t.Fatalf("progress = %+v; want 1 coalesced, state enqueued", p)
	}
	e.startServer(t)
	p = waitJob(t, j, p.ID, 10*time.Second)
	if p.State != JobDone || p.Done.Updated != 1 {
		t.Fatalf("progress = %+v; want done with 1 updated", p)
	}
	if _, _, syncs := e.fake.state(key); syncs != 1 {
		t.Errorf("syncs = %d; want 1 (the sweep's task carried the bulk id)", syncs)
	}
}

// A registration left by a task that died without recording is taken by the
// next run for the key.
func TestBulkRegistrationOfDeadTaskTakenByNextRun(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000888"
	j := e.jobs(nil)
	p := runJob(t, j, ListSource([]string{key}))
	if p.Enqueued != 1 {
		t.Fatalf("progress = %+v", p)
	}
	// The task vanishes (deleted from asynqmon, say) and its epoch is closed
	// the way the dead-task paths close it.
	if err := e.insp.DeleteTask(QueueBulk, taskID(key, 0)); err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	if _, err := runAdvance(t.Context(), e.rdb, e.keys(), key, 0, true); err != nil {
		t.Fatal(err)
	}
	e.startServer(t)
	if st, id := e.enqueue(t, key, callout); st != Enqueued || id != taskID(key, 1) {
		t.Fatalf("callout after: %s %s", st, id)
	}
	p = waitJob(t, j, p.ID, 10*time.Second)
	if p.State != JobDone || p.Done.Unchanged != 1 {
		t.Fatalf("progress = %+v; want done with 1 unchanged", p)
	}
}

func (e *testEnv) keys() keyspace { return keyspace{e.cfg.Prefix} }

type fakeQuerier struct {
	got zuora.SubscriptionQuery
	ids []string
}

func (f *fakeQuerier) QuerySubscriptions(_ context.Context, q zuora.SubscriptionQuery, fn func(string) error) error {
	f.got = q
	for _, id := range f.ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// A source error fails the job; what was enqueued before still syncs.
func TestBulkSourceErrorFailsJob(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	j := e.jobs(func(c *JobsConfig) { c.BatchSize = 2; c.Workers = 1 })
	p, err := j.Create(t.Context(), "zuora")
	if err != nil {
		t.Fatal(err)
	}
	q := &fakeQuerier{ids: numbers(1, 4)}
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	src := ZuoraSource(q, zuora.SubscriptionQuery{Status: "Active", UpdatedSince: since})
	boom := errors.New("query locator expired")
	failing := func(ctx context.Context, yield func(string) error) error {
		if err := src(ctx, yield); err != nil {
			return err
		}
		return boom
	}
	p, err = j.Run(t.Context(), p.ID, failing)
	if !errors.Is(err, boom) {
		t.Fatalf("Run error = %v; want %v", err, boom)
	}
	if q.got.Status != "Active" || !q.got.UpdatedSince.Equal(since) {
		t.Errorf("query = %+v", q.got)
	}
	if p.State != JobFailed || !strings.Contains(p.Error, "locator") || p.Enqueued != 4 {
		t.Fatalf("progress = %+v; want failed with the error, 4 enqueued", p)
	}
	if _, err := j.Progress(t.Context(), "rs-20260101T000000-00000000"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	if _, err := j.Progress(t.Context(), "../etc"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("malformed job id: %v", err)
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"A-S00000271": true, "SUB-000123": true, "GB-S00001234": true, "sub-0123456789abcdef": true,
		"3V053CN9SFIG": true, "A-S": false, "a-s1": false, "A-S1 ": false, "": false, "A-S1/..": false,
		"A-SX": false, strings.Repeat("A", 60) + "-S1234": false, "sub-x": false, "A-S{1}": false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v; want %v", id, got, want)
		}
	}
}

// 100,000 ids are all read and enqueued with memory that does not grow with
// the number of ids. How fast is for the benchmark (bench/ BenchmarkBulk),
// not for a test on a shared machine. Not parallel: it measures the heap of
// the test process.
func TestBulkEnqueueScalesFlat(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	e := newTestEnv(t, nil)
	j := e.jobs(nil)
	src := func(ctx context.Context, yield func(string) error) error {
		var b [16]byte
		for i := range n {
			if err := yield(string(fmt.Appendf(b[:0], "A-S%08d", i))); err != nil {
				return err
			}
		}
		return nil
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	p := runJob(t, j, src)
	close(stop)
	wg.Wait()

	growth := int64(peak.Load()) - int64(base)
	t.Logf("%d ids enqueued; heap in use %d KiB before, peak growth %d KiB", n, base>>10, growth>>10)
	if p.Read != int64(n) || p.Enqueued != int64(n) {
		t.Fatalf("progress = %+v; want %d read and enqueued", p, n)
	}
	info, err := e.insp.GetQueueInfo(QueueBulk)
	if err != nil || info.Pending != n {
		t.Fatalf("bulk queue: %+v %v; want %d pending", info, err, n)
	}
	// Holding n ids and their tasks would take well over 200 bytes each
	// (id, payload, task, options): 20 MB for 100,000. The pipeline holds
	// at most (2×Workers+1)×BatchSize ids whatever n is.
	if bound := int64(12 << 20); growth > bound {
		t.Errorf("heap grew by %d KiB; want under %d KiB", growth>>10, bound>>10)
	}
}

// failCreditsOnce fails the first resync-job credit, as a Redis error or a
// spent deadline would.
type failCreditsOnce struct{ done atomic.Bool }

func (*failCreditsOnce) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failCreditsOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) > 1 && args[1] == creditScript.Hash() && f.done.CompareAndSwap(false, true) {
			cmd.SetErr(errors.New("injected: credit failed"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (*failCreditsOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A credit that fails after the job's registrations were taken puts them
// back: the next run of the subscription credits the job, which finishes.
func TestBulkJobCreditRetriedByTheNextRun(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000501"
	e.fake.bump(key)
	fail := &failCreditsOnce{}
	e.rdb.AddHook(fail)
	j := e.jobs(nil)
	p := runJob(t, j, ListSource([]string{key}))
	e.startServer(t)
	waitFor(t, 10*time.Second, "the failed credit", func() bool { return fail.done.Load() && e.drained(t) })
	if got, err := j.Progress(t.Context(), p.ID); err != nil || got.Finished() {
		t.Fatalf("job after the failed credit: %+v, %v; want still pending", got, err)
	}
	e.fake.bump(key)
	e.enqueue(t, key, callout)
	if got := waitJob(t, j, p.ID, 10*time.Second); got.State != JobDone || got.Done.Total() != 1 {
		t.Fatalf("job after the next run: %+v; want done with 1 outcome", got)
	}
}

// A run that takes longer than the job's TTL keeps the job's record alive
// batch by batch: it doesn't expire mid-run and come back without its state.
func TestBulkJobRecordOutlivesASlowSource(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	j := e.jobs(func(c *JobsConfig) { c.TTL, c.BatchSize, c.Workers = time.Second, 1, 1 })
	slow := IDSource(func(ctx context.Context, yield func(string) error) error {
		for _, id := range numbers(601, 5) {
			time.Sleep(400 * time.Millisecond) // 2 s in all, twice the TTL
			if err := yield(id); err != nil {
				return err
			}
		}
		return nil
	})
	p := runJob(t, j, slow)
	got, err := j.Progress(t.Context(), p.ID)
	if err != nil || got.ID != p.ID || got.Read != 5 || got.State == "" {
		t.Fatalf("job after a run longer than its TTL: %+v, %v; want its record with 5 ids read", got, err)
	}
}

// A job's failures list lives as long as the job, whatever TTL the job was
// made with.
func TestBulkJobFailuresShareTheJobsTTL(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	const key = "A-S00000701"
	e.fake.failNext(key, syncer.Permanent(errors.New("bad data")))
	j := e.jobs(func(c *JobsConfig) { c.TTL = time.Hour })
	p := runJob(t, j, ListSource([]string{key}))
	e.startServer(t)
	if got := waitJob(t, j, p.ID, 10*time.Second); got.Done.Failed != 1 || len(got.Failures) != 1 {
		t.Fatalf("job %+v; want one failure listed", got)
	}
	ttl, err := e.rdb.TTL(t.Context(), e.cfg.Prefix+"bulk:job:"+p.ID+":failures").Result()
	if err != nil || ttl <= 0 || ttl > time.Hour {
		t.Fatalf("failures list TTL %v (%v); want at most the job's hour", ttl, err)
	}
}
