package worker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/syncer"
)

// creditScript adds ARGV[2] final outcomes ARGV[1] to a job (ARGV[3] now).
// An expired job is left alone rather than recreated without its totals.
var creditScript = redis.NewScript(completeLua + `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'done:' .. ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'done', ARGV[2])
complete(KEYS[1], ARGV[3])
return 1
`)

// settleJobs is the handler's hook, called once per recorded run: a final
// run (success, or archived) credits the jobs waiting on its key with its
// outcome. A run that will be retried credits nothing yet.
func (h *handler) settleJobs(ctx context.Context, rec Record) {
	if rec.Epoch < 0 || rec.Key == "" || (rec.Error != "" && !rec.Archived && rec.Outcome != syncer.NotFound) {
		return
	}
	counts, err := takeJobs(ctx, h.rdb, h.keys, rec.Key, rec.Epoch)
	if err != nil {
		h.log.Warn("settle resync jobs", zap.String("subscription", rec.Key), zap.Error(err))
		return
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for job, c := range counts {
		if rec.Outcome == syncer.Failed || rec.Outcome == syncer.NotFound {
			b, _ := json.Marshal(JobFailure{ID: rec.Key, Subscription: rec.Subscription, Outcome: rec.Outcome,
				Error: rec.Error, TaskID: rec.TaskID})
			// The list lives as long as its job (whose TTL the Jobs that made
			// it chose; the worker's config doesn't know it).
			ttl, err := h.rdb.PTTL(ctx, h.keys.job(job)).Result()
			if err != nil || ttl <= 0 {
				ttl = defaultJobTTL
			}
			pipe := h.rdb.Pipeline()
			pipe.RPush(ctx, h.keys.jobFailures(job), b)
			pipe.LTrim(ctx, h.keys.jobFailures(job), 0, maxListed-1)
			pipe.Expire(ctx, h.keys.jobFailures(job), ttl)
			if _, err := pipe.Exec(ctx); err != nil {
				h.log.Warn("record resync failure", zap.String("job", job), zap.Error(err))
			}
		}
		if err := creditScript.Run(ctx, h.rdb, []string{h.keys.job(job)}, string(rec.Outcome), c, now).Err(); err != nil {
			// The registrations were taken: put them back, so the next run
			// of this key credits the job (else it never finishes).
			rerr := putBackJob(context.WithoutCancel(ctx), h.rdb, h.keys, rec.Key, rec.Epoch, job, c)
			h.log.Warn("credit resync job; registration put back for the next run", zap.String("job", job),
				zap.String("subscription", rec.Key), zap.Error(err), zap.NamedError("put_back", rerr))
		}
	}
}
