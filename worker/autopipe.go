package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// NewPipelinedClient returns an asynq.Client on a Redis connection pool of
// its own, made from opt, whose script calls share pipelines (AutoPipeline):
// under a burst of callouts the ingress's enqueues then cost Redis and the
// ingress one write and one read per batch rather than per callout.
// closePool releases the pool (asynq's Close leaves a client it was given open).
func NewPipelinedClient(opt asynq.RedisConnOpt) (client *asynq.Client, closePool func() error, err error) {
	c, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, nil, fmt.Errorf("redis option %T makes no go-redis client", opt)
	}
	AutoPipeline(c)
	return asynq.NewClientFromRedisClient(c), c.Close, nil
}

// autoPipeTimeout bounds one shared pipeline: it serves many callers, so it
// can't use any one caller's context.
const autoPipeTimeout = 5 * time.Second

// autoPipeMaxInFlight is how many shared pipelines may be in flight at once:
// more than one, so a command arriving while a pipeline is out doesn't wait a
// full round trip for it to come back.
const autoPipeMaxInFlight = 2

// AutoPipeline makes concurrent script calls on c share pipelines: a call
// issued while others are waiting goes out with them in one write and one
// read, for the caller and for Redis. A lone command goes at once, so nothing
// waits for a batch to fill. For a client that makes many small independent
// calls, such as the asynq.Client of an ingress under a burst of callouts.
// Other commands, pipelines and transactions on c are sent as they are. Not
// for a client whose stateful connections (Client.Conn) run scripts: those
// calls would be sent on a pooled connection.
func AutoPipeline(c redis.UniversalClient) {
	a := &autoPipe{c: c}
	a.batch = batcher[*autoPipeReq]{send: a.send, maxInFlight: autoPipeMaxInFlight}
	c.AddHook(a)
}

type autoPipe struct {
	c     redis.UniversalClient
	batch batcher[*autoPipeReq]
}

type autoPipeReq struct {
	cmd  redis.Cmder
	done chan struct{} // buffered: send answers each request once, never blocking
}

// autoPipeReqs recycles requests: one is reused only after its caller took
// its answer, when the pipeline is done with it.
var autoPipeReqs = sync.Pool{New: func() any { return &autoPipeReq{done: make(chan struct{}, 1)} }}

func (a *autoPipe) DialHook(next redis.DialHook) redis.DialHook { return next }

func (a *autoPipe) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (a *autoPipe) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !scriptCall(cmd) {
			return next(ctx, cmd)
		}
		if err := ctx.Err(); err != nil {
			// As go-redis itself does: a caller that gave up sends nothing.
			cmd.SetErr(err)
			return err
		}
		req := autoPipeReqs.Get().(*autoPipeReq)
		req.cmd = cmd
		a.batch.add(req)
		// Waited for even if ctx ends: the pipeline writes its answer into
		// cmd, which the caller reads once this returns. A pipeline ends
		// within autoPipeTimeout.
		<-req.done
		req.cmd = nil
		autoPipeReqs.Put(req)
		return cmd.Err()
	}
}

// scriptCall reports whether cmd runs a script: the calls an asynq.Client
// makes per task (enqueue, schedule). Everything else goes its own way; in
// particular a new connection's handshake (HELLO, AUTH, SELECT), which runs
// through these hooks too and must not wait for a pipeline that waits for it.
func scriptCall(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "evalsha", "eval", "evalsha_ro", "eval_ro":
		return true
	}
	return false
}

// answered reports whether a script call got a value back.
func answered(cmd redis.Cmder) bool {
	c, ok := cmd.(*redis.Cmd)
	return ok && c.Val() != nil
}

func (a *autoPipe) send(batch []*autoPipeReq) {
	ctx, cancel := context.WithTimeout(context.Background(), autoPipeTimeout)
	defer cancel()
	pipe := a.c.Pipeline()
	for _, r := range batch {
		_ = pipe.Process(ctx, r.cmd)
	}
	_, err := pipe.Exec(ctx) // each command carries its own answer or error...
	for _, r := range batch {
		if err != nil && r.cmd.Err() == nil && !answered(r.cmd) {
			// ...except when the pipeline never ran (no connection): go-redis
			// leaves those commands without one, and they would read as an
			// empty success.
			r.cmd.SetErr(err)
		}
		r.done <- struct{}{}
	}
}
