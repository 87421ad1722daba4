package worker

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/syncer"
)

// settleCounter counts the settle scripts a client runs (EVALSHA or EVAL of
// settleScript, alone or in a pipeline; an EVALSHA refused with NOSCRIPT,
// which go-redis follows with the EVAL, is not counted).
type settleCounter struct{ n atomic.Int64 }

func (c *settleCounter) count(cmd redis.Cmder, err error) {
	args := cmd.Args()
	if len(args) < 2 {
		return
	}
	if redis.HasErrorPrefix(err, "NOSCRIPT") || redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		return
	}
	if a, ok := args[1].(string); ok && (a == settleScript.Hash() || strings.Contains(a, "local upto")) {
		c.n.Add(1)
	}
}

func (c *settleCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *settleCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		c.count(cmd, err)
		return err
	}
}
func (c *settleCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			c.count(cmd, nil)
		}
		return err
	}
}

// A run whose key no bulk job waits on (its advance under the lock saw no
// registration) records without the settle script: one Redis round trip
// less per callout-driven sync. A run a job waits on still settles it, so
// the job finishes.
func TestSettleOnlyWhenJobsWait(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	settles := &settleCounter{}
	e.rdb.AddHook(settles)
	e.startServer(t)

	e.enqueue(t, "A-S00000001", syncer.Trigger{Source: syncer.SourceCallout})
	waitFor(t, 10*time.Second, "the callout's sync recorded", func() bool {
		r, err := e.store.Latest(t.Context(), "A-S00000001")
		return err == nil && r != nil
	})
	if n := settles.n.Load(); n != 0 {
		t.Errorf("callout-driven run sent %d settle scripts; want 0", n)
	}

	j := e.jobs(nil)
	p := runJob(t, j, ListSource([]string{"A-S00000002"}))
	p = waitJob(t, j, p.ID, 10*time.Second)
	if p.Done.Unchanged+p.Done.Updated != 1 {
		t.Errorf("job done %+v; want its one id credited", p.Done)
	}
	if n := settles.n.Load(); n != 1 {
		t.Errorf("job-driven run sent %d settle scripts; want 1", n)
	}
}
