package worker

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimTimeout bounds one pipeline of claims: it serves many callouts, so it
// can't use any one callout's context.
const claimTimeout = 5 * time.Second

// claimer runs the epoch claims of concurrent callouts in shared
// pipelines. Under load a callout costs two Redis round trips (the claim,
// then asynq's enqueue, which needs the claimed epoch); batching the claims
// removes most of the first. One batch is in flight at a time.
type claimer struct {
	rdb   redis.UniversalClient
	keys  keyspace
	batch batcher[*claimReq]
}

func newClaimer(rdb redis.UniversalClient, keys keyspace) *claimer {
	cl := &claimer{rdb: rdb, keys: keys}
	cl.batch = batcher[*claimReq]{send: cl.send, maxInFlight: 1}
	return cl
}

type claimReq struct {
	key  string
	done chan claimRes // buffered: send never blocks on a caller that left
}

type claimRes struct {
	c   claim
	err error
}

// claim counts one callout for key in its current epoch.
func (cl *claimer) claim(ctx context.Context, key string) (claim, error) {
	req := &claimReq{key: key, done: make(chan claimRes, 1)}
	cl.batch.add(req)
	select {
	case r := <-req.done:
		return r.c, r.err
	case <-ctx.Done():
		// The claim may still run: a callout counted but not enqueued only
		// makes the epoch's task skip the loop guard (a full sync).
		return claim{}, ctx.Err()
	}
}

// send claims a batch in one pipeline of claimScript calls. (A MULTI/EXEC of
// plain commands would cost Redis less, but a transaction can't span hash
// slots on Redis Cluster, and a batch's keys do.)
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
