package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/syncer"
)

// Bulk re-sync (docs/design.md "Flows"): a job streams ids from a source into
// the bulk queue through the same epoch dedup as callouts, and keeps live
// progress in one Redis hash, <prefix>bulk:job:<id>.
//
// How a job learns that its ids are done: each claim of an epoch registers
// the job in the subscription's epoch hash (field j:<epoch>:<job>, see
// epoch.go), atomically with reading the epoch. The handler's one
// recording exit (finish → settleJobs), on a run that is final (success, or
// archived), takes every registration at or below its own epoch and credits
// those jobs with its outcome. A key that coalesced into a task someone else
// created (a callout's, another job's, one already running) is therefore
// counted when that task ends, and a registration left behind by a task that
// died without recording is taken by the next run for the key. Carrying the
// job id in the task's payload could not do this: a coalesced key's task was
// made by someone else.

// JobState is where a resync job is.
type JobState string

// Job states.
const (
	JobRunning  JobState = "running"  // reading ids and enqueueing
	JobEnqueued JobState = "enqueued" // every id enqueued; syncs under way
	JobDone     JobState = "done"     // every enqueued id has a final outcome
	JobFailed   JobState = "failed"   // reading or enqueueing stopped on an error (Error); enqueued ids still sync
)

// ErrJobNotFound is returned for an unknown (or expired) job id.
var ErrJobNotFound = errors.New("resync job not found")

// JobOutcomes counts the final outcomes of a job's ids.
type JobOutcomes struct {
	Created   int64 `json:"created"`
	Updated   int64 `json:"updated"`
	Unchanged int64 `json:"unchanged"`
	Skipped   int64 `json:"skipped"`
	NotFound  int64 `json:"not_found"`
	Failed    int64 `json:"failed"`
}

// Total is the number of ids with a final outcome.
func (o JobOutcomes) Total() int64 {
	return o.Created + o.Updated + o.Unchanged + o.Skipped + o.NotFound + o.Failed
}

// JobFailure is one id that ended failed or not_found.
type JobFailure struct {
	ID           string        `json:"id"`
	Subscription string        `json:"subscription,omitempty"`
	Outcome      syncer.Result `json:"outcome"`
	Error        string        `json:"error,omitempty"`
	TaskID       string        `json:"task_id,omitempty"`
}

// JobProgress is a job's live progress.
type JobProgress struct {
	ID         string       `json:"id"`
	Source     string       `json:"source"`
	State      JobState     `json:"state"`
	Read       int64        `json:"read"`      // ids read from the source
	Enqueued   int64        `json:"enqueued"`  // new tasks
	Coalesced  int64        `json:"coalesced"` // joined a task not yet reading Zuora
	Invalid    int64        `json:"invalid"`   // refused by ValidID, not enqueued
	Done       JobOutcomes  `json:"done"`
	Pending    int64        `json:"pending"` // enqueued + coalesced without a final outcome yet
	StartedAt  time.Time    `json:"started_at"`
	EnqueuedAt *time.Time   `json:"enqueued_at,omitempty"`
	FinishedAt *time.Time   `json:"finished_at,omitempty"`
	Error      string       `json:"error,omitempty"`
	InvalidIDs []string     `json:"invalid_ids,omitempty"` // the first ones
	Failures   []JobFailure `json:"failures,omitempty"`    // the first ones
}

// Finished reports whether the job will make no more progress.
func (p JobProgress) Finished() bool { return p.State == JobDone || p.State == JobFailed }

var jobIDRE = regexp.MustCompile(`^rs-[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$`)

// ValidJobID reports whether id has the form of a job id (rs-<time>-<rand>).
func ValidJobID(id string) bool { return jobIDRE.MatchString(id) }

func newJobID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "rs-" + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

const (
	defaultJobWorkers = 8
	defaultJobBatch   = 256
	defaultJobTTL     = 7 * 24 * time.Hour
	maxListed         = 1000 // failures and invalid ids kept per job
)

// JobsConfig configures Jobs. Zero values take the defaults.
type JobsConfig struct {
	Prefix    string        // Redis key prefix; default "zsync:" (the worker's)
	Workers   int           // batches enqueued at once; default 8
	BatchSize int           // ids per pipelined batch; default 256
	TTL       time.Duration // a job's record is kept this long after its last state change; default 7 days
}

func (c JobsConfig) withDefaults() JobsConfig {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Workers <= 0 {
		c.Workers = defaultJobWorkers
	}
	if c.BatchSize <= 0 {
		c.BatchSize = defaultJobBatch
	}
	if c.TTL <= 0 {
		c.TTL = defaultJobTTL
	}
	return c
}

// Jobs creates and runs resync jobs and reads their progress.
type Jobs struct {
	rdb  redis.UniversalClient
	enq  *Enqueuer
	cfg  JobsConfig
	keys keyspace
	log  *zap.Logger
}

// NewJobs returns Jobs enqueueing through enq (which must use the same
// prefix as the workers).
func NewJobs(rdb redis.UniversalClient, enq *Enqueuer, cfg JobsConfig, logger *zap.Logger) *Jobs {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Jobs{rdb: rdb, enq: enq, cfg: cfg, keys: keyspace{cfg.Prefix}, log: logger.Named("bulk")}
}

// Create records a new job, state running, and returns it. Run it next.
func (j *Jobs) Create(ctx context.Context, source string) (JobProgress, error) {
	now := time.Now().UTC()
	id := newJobID(now)
	k := j.keys.job(id)
	pipe := j.rdb.TxPipeline() // one key: atomic, cluster safe
	pipe.HSet(ctx, k, "id", id, "source", source, "state", string(JobRunning), "started", now.Format(time.RFC3339Nano),
		"read", 0, "enqueued", 0, "coalesced", 0, "invalid", 0, "done", 0)
	pipe.Expire(ctx, k, j.cfg.TTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return JobProgress{}, fmt.Errorf("create resync job: %w", err)
	}
	j.log.Info("resync job created", zap.String("job", id), zap.String("source", source))
	return JobProgress{ID: id, Source: source, State: JobRunning, StartedAt: now}, nil
}

// Run streams src into the bulk queue for job id, Workers batches at a time,
// and returns the progress once every id is enqueued (state enqueued, or
// done if the syncs were quicker). Memory stays flat: at most
// (2×Workers+1)×BatchSize ids are held. On an error (the source's, Redis',
// ctx ending) the job is marked failed and the error returned; ids already
// enqueued still sync.
func (j *Jobs) Run(ctx context.Context, id string, src IDSource) (JobProgress, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []string, j.cfg.Workers)
	var wg sync.WaitGroup
	for range j.cfg.Workers {
		wg.Go(func() {
			for b := range batches {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := j.enqueue(ctx, id, b); err != nil {
					cancel(err)
				}
			}
		})
	}
	batch := make([]string, 0, j.cfg.BatchSize)
	send := func() error {
		select {
		case batches <- batch:
			batch = make([]string, 0, j.cfg.BatchSize)
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	err := src(ctx, func(key string) error {
		batch = append(batch, key)
		if len(batch) < j.cfg.BatchSize {
			return nil
		}
		return send()
	})
	if err == nil && len(batch) > 0 {
		err = send()
	}
	close(batches)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		err = cause // a worker's Redis error, or the caller's ctx, is the root cause
	}

	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer wcancel()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if err != nil {
		j.log.Warn("resync job failed", zap.String("job", id), zap.Error(err))
		if ferr := j.mark(wctx, id, "state", string(JobFailed), "error", err.Error(), "finished", now); ferr != nil {
			j.log.Error("mark resync job failed", zap.String("job", id), zap.Error(ferr))
		}
		p, _ := j.Progress(wctx, id)
		return p, err
	}
	if err := enqueuedScript.Run(wctx, j.rdb, []string{j.keys.job(id)}, now).Err(); err != nil {
		return JobProgress{}, fmt.Errorf("resync job %s: %w", id, err)
	}
	j.refreshTTL(wctx, id)
	p, err := j.Progress(wctx, id)
	if err == nil {
		j.log.Info("resync job enqueued", zap.String("job", id), zap.Int64("read", p.Read),
			zap.Int64("enqueued", p.Enqueued), zap.Int64("coalesced", p.Coalesced), zap.Int64("invalid", p.Invalid))
	}
	return p, err
}

// enqueue validates and enqueues one batch and adds it to the counters.
func (j *Jobs) enqueue(ctx context.Context, id string, batch []string) error {
	valid := make([]string, 0, len(batch))
	var invalid []any
	for _, k := range batch {
		if ValidID(k) {
			valid = append(valid, k)
		} else {
			invalid = append(invalid, k)
		}
	}
	var enq, coal int64
	var err error
	if len(valid) > 0 {
		var res []batchResult
		res, err = j.enq.enqueueBatch(ctx, valid, syncer.Trigger{Source: syncer.SourceBulk}, QueueBulk, id)
		for _, r := range res {
			switch r.Status {
			case Enqueued:
				enq++
			case Coalesced:
				coal++
			}
		}
	}
	// Counted even when the batch failed half-way: what was enqueued syncs.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	pipe := j.rdb.Pipeline()
	k := j.keys.job(id)
	pipe.HIncrBy(wctx, k, "read", int64(len(batch)))
	pipe.HIncrBy(wctx, k, "enqueued", enq)
	pipe.HIncrBy(wctx, k, "coalesced", coal)
	pipe.Expire(wctx, k, j.cfg.TTL) // a long run must not outlive its own record
	if len(invalid) > 0 {
		pipe.HIncrBy(wctx, k, "invalid", int64(len(invalid)))
		pipe.RPush(wctx, j.keys.jobInvalid(id), invalid...)
		pipe.LTrim(wctx, j.keys.jobInvalid(id), 0, maxListed-1)
		pipe.Expire(wctx, j.keys.jobInvalid(id), j.cfg.TTL)
	}
	if _, perr := pipe.Exec(wctx); perr != nil && err == nil {
		err = fmt.Errorf("count resync progress: %w", perr)
	}
	return err
}

// mark sets fields of the job's hash.
func (j *Jobs) mark(ctx context.Context, id string, fields ...any) error {
	if err := j.rdb.HSet(ctx, j.keys.job(id), fields...).Err(); err != nil {
		return err
	}
	j.refreshTTL(ctx, id)
	return nil
}

func (j *Jobs) refreshTTL(ctx context.Context, id string) {
	pipe := j.rdb.Pipeline()
	for _, k := range []string{j.keys.job(id), j.keys.jobFailures(id), j.keys.jobInvalid(id)} {
		pipe.Expire(ctx, k, j.cfg.TTL)
	}
	_, _ = pipe.Exec(ctx) // best effort: the record outlives the job by the TTL
}

// Progress reads a job's progress; ErrJobNotFound for an unknown id.
func (j *Jobs) Progress(ctx context.Context, id string) (JobProgress, error) {
	if !ValidJobID(id) {
		return JobProgress{}, ErrJobNotFound
	}
	pipe := j.rdb.Pipeline()
	h := pipe.HGetAll(ctx, j.keys.job(id))
	fl := pipe.LRange(ctx, j.keys.jobFailures(id), 0, -1)
	il := pipe.LRange(ctx, j.keys.jobInvalid(id), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return JobProgress{}, fmt.Errorf("read resync job %s: %w", id, err)
	}
	m := h.Val()
	if len(m) == 0 || m["id"] == "" {
		return JobProgress{}, ErrJobNotFound
	}
	n := func(f string) int64 { v, _ := strconv.ParseInt(m[f], 10, 64); return v }
	ts := func(f string) *time.Time {
		t, err := time.Parse(time.RFC3339Nano, m[f])
		if err != nil {
			return nil
		}
		return &t
	}
	p := JobProgress{
		ID: m["id"], Source: m["source"], State: JobState(m["state"]), Error: m["error"],
		Read: n("read"), Enqueued: n("enqueued"), Coalesced: n("coalesced"), Invalid: n("invalid"),
		Done: JobOutcomes{
			Created: n("done:" + string(syncer.Created)), Updated: n("done:" + string(syncer.Updated)),
			Unchanged: n("done:" + string(syncer.Unchanged)), Skipped: n("done:" + string(syncer.Skipped)),
			NotFound: n("done:" + string(syncer.NotFound)), Failed: n("done:" + string(syncer.Failed)),
		},
		EnqueuedAt: ts("enqueued_at"), FinishedAt: ts("finished"),
		InvalidIDs: il.Val(),
	}
	if t := ts("started"); t != nil {
		p.StartedAt = *t
	}
	p.Pending = max(0, p.Enqueued+p.Coalesced-n("done"))
	for _, s := range fl.Val() {
		var f JobFailure
		if json.Unmarshal([]byte(s), &f) == nil {
			p.Failures = append(p.Failures, f)
		}
	}
	return p, nil
}

// completeLua marks a job done once every id it enqueued has a final outcome.
const completeLua = `
local function complete(k, now)
  if redis.call('HGET', k, 'state') ~= 'enqueued' then return end
  local d = tonumber(redis.call('HGET', k, 'done') or '0')
  local w = tonumber(redis.call('HGET', k, 'enqueued') or '0') + tonumber(redis.call('HGET', k, 'coalesced') or '0')
  if d >= w then redis.call('HSET', k, 'state', 'done', 'finished', now) end
end
`

// enqueuedScript ends the enqueue phase (ARGV[1] now).
var enqueuedScript = redis.NewScript(completeLua + `
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'enqueued', 'enqueued_at', ARGV[1])
complete(KEYS[1], ARGV[1])
return 1
`)
