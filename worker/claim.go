package worker

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimTimeout bounds one pipeline of claims: it serves many callouts, so it
// can't use any one callout's context.
const claimTimeout = 5 * time.Second

// claimer runs the epoch claims of concurrent callouts in shared pipelines.
// Under load a callout costs two Redis round trips (the claim, then asynq's
// enqueue, which needs the claimed epoch); batching the claims removes most
// of the first. Batching is opportunistic: a pipeline takes every claim
// waiting when it starts, and a lone claim goes at once, so nothing waits for
// a batch to fill. One pipeline is in flight at a time.
type claimer struct {
	rdb  redis.UniversalClient
	keys keyspace

	mu      sync.Mutex
	pending []*claimReq
	running bool
}

type claimReq struct {
	key  string
	done chan claimRes // buffered: the loop never blocks on a caller that left
}

type claimRes struct {
	c   claim
	err error
}

// claim counts one callout for key in its current epoch.
func (cl *claimer) claim(ctx context.Context, key string) (claim, error) {
	req := &claimReq{key: key, done: make(chan claimRes, 1)}
	cl.mu.Lock()
	cl.pending = append(cl.pending, req)
	if !cl.running {
		cl.running = true
		go cl.loop()
	}
	cl.mu.Unlock()
	select {
	case r := <-req.done:
		return r.c, r.err
	case <-ctx.Done():
		// The claim may still run: a callout counted but not enqueued only
		// makes the epoch's task skip the loop guard (a full sync).
		return claim{}, ctx.Err()
	}
}

// loop sends the waiting claims, batch after batch, until none are left.
func (cl *claimer) loop() {
	for {
		cl.mu.Lock()
		batch := cl.pending
		cl.pending = nil
		if len(batch) == 0 {
			cl.running = false
			cl.mu.Unlock()
			return
		}
		cl.mu.Unlock()
		cl.send(batch)
	}
}

func (cl *claimer) send(batch []*claimReq) {
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	if len(batch) == 1 {
		req := batch[0]
		v, err := claimScript.Run(ctx, cl.rdb, []string{cl.keys.epoch(req.key)}, "").Int64Slice()
		c, err := parseClaim(req.key, v, err)
		req.done <- claimRes{c, err}
		return
	}
	pipe := cl.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, req := range batch {
		cmds[i] = claimScript.EvalSha(ctx, pipe, []string{cl.keys.epoch(req.key)}, "")
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	for i, req := range batch {
		v, err := cmds[i].Int64Slice()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// The script cache was flushed: this command did not run.
			v, err = claimScript.Run(ctx, cl.rdb, []string{cl.keys.epoch(req.key)}, "").Int64Slice()
		}
		c, err := parseClaim(req.key, v, err)
		req.done <- claimRes{c, err}
	}
}
