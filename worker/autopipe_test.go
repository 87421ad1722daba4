package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/waittest"
)

// pipeCounter counts the pipelines a client sends and the commands in them.
type pipeCounter struct{ pipes, cmds atomic.Int64 }

func (p *pipeCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (p *pipeCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (p *pipeCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		p.pipes.Add(1)
		p.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// autoPipeClient is a go-redis client with AutoPipeline on a private Redis.
func autoPipeClient(t *testing.T) (*redistest.Server, *redis.Client) {
	t.Helper()
	rs := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, DB: rs.DB})
	t.Cleanup(func() { _ = c.Close() })
	AutoPipeline(c)
	return rs, c
}

var echoScript = redis.NewScript(`
if ARGV[1] == 'fail' then return redis.error_reply('ERR asked to fail') end
redis.call('INCR', KEYS[1])
return ARGV[1]`)

// Concurrent script calls share pipelines, and each caller gets its own
// answer or its own error. The first calls go on fresh connections, whose
// handshake passes through the same hook without waiting on a pipeline.
func TestAutoPipelineSharesPipelinesAndKeepsAnswersApart(t *testing.T) {
	t.Parallel()
	_, c := autoPipeClient(t)
	var count pipeCounter
	c.AddHook(&count)

	const n = 2000
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			arg := fmt.Sprint("v", i)
			if i%10 == 0 {
				arg = "fail"
			}
			got, err := echoScript.Run(ctx, c, []string{"calls"}, arg).Text()
			switch {
			case arg == "fail" && (err == nil || err.Error() != "ERR asked to fail"):
				t.Errorf("call %d: (%q, %v); want its own script error", i, got, err)
			case arg != "fail" && (err != nil || got != arg):
				t.Errorf("call %d: (%q, %v); want %q", i, got, err, arg)
			}
		})
	}
	wg.Wait()
	if got, err := c.Get(ctx, "calls").Int(); err != nil || got != n-n/10 {
		t.Fatalf("the script ran %d times (%v); want %d", got, err, n-n/10)
	}
	// Not a script: sent alone, not in a pipeline.
	before := count.pipes.Load()
	if err := c.Set(ctx, "plain", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if count.pipes.Load() != before {
		t.Fatal("a plain command went through a pipeline")
	}
	pipes, cmds := count.pipes.Load(), count.cmds.Load()
	t.Logf("%d script calls in %d pipelines (%d commands, NOSCRIPT retries included)", n, pipes, cmds)
	if cmds < n || pipes >= cmds/2 {
		t.Fatalf("%d pipelines for %d commands: calls were not shared", pipes, cmds)
	}
}

// With Redis gone every waiting call fails within the pipeline's timeout;
// none hangs, and calls work again once Redis is back.
func TestAutoPipelineRedisDown(t *testing.T) {
	t.Parallel()
	rs, c := autoPipeClient(t)
	rs.Stop()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 50 {
		wg.Go(func() {
			if err := echoScript.Run(t.Context(), c, []string{"k"}, "x").Err(); err != nil {
				failed.Add(1)
			}
		})
	}
	// A hung call would only end with the test's context: all 50 returning
	// is the signal (the deadline is generous, not a timing).
	returned := make(chan struct{})
	go func() { wg.Wait(); close(returned) }()
	waittest.Recv(t, time.Minute, "every call to return with Redis down", returned)
	if failed.Load() != 50 {
		t.Fatalf("%d of 50 calls failed with Redis down", failed.Load())
	}
	rs.Restart(t)
	waittest.For(t, 20*time.Second, "a call to work after Redis came back", func() bool {
		return echoScript.Run(t.Context(), c, []string{"k"}, "x").Err() == nil
	})
}

// The ingress's asynq client: tasks are created once, a second enqueue of
// the same id is asynq's ErrTaskIDConflict, through shared pipelines.
func TestPipelinedClientEnqueues(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	client, closeFn, err := NewPipelinedClient(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeFn() })
	const n = 200
	var created, conflicts atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			id := fmt.Sprintf("A-S%d:0", i%n)
			_, err := client.EnqueueContext(t.Context(), asynq.NewTask(taskTypeSync, nil), asynq.TaskID(id), asynq.Queue(QueueCallouts))
			switch {
			case err == nil:
				created.Add(1)
			case errors.Is(err, asynq.ErrTaskIDConflict):
				conflicts.Add(1)
			default:
				t.Errorf("enqueue %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if created.Load() != n || conflicts.Load() != n {
		t.Fatalf("created %d, conflicts %d; want %d each", created.Load(), conflicts.Load(), n)
	}
	size, err := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB}).GetQueueInfo(QueueCallouts)
	if err != nil || size.Pending != n {
		t.Fatalf("queue has %+v (%v); want %d pending", size, err, n)
	}
}

// A script call whose context has already ended is not sent.
func TestAutoPipelineSkipsEndedContexts(t *testing.T) {
	t.Parallel()
	_, c := autoPipeClient(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := echoScript.Run(ctx, c, []string{"skipped"}, "x").Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with an ended context: %v; want context.Canceled", err)
	}
	if n, err := c.Exists(t.Context(), "skipped").Result(); err != nil || n != 0 {
		t.Fatalf("the script ran anyway (%d, %v)", n, err)
	}
}
