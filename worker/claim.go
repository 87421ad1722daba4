package worker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimTimeout bounds one pipeline of claims: it serves many callouts, so it
// can't use any one callout's context.
const claimTimeout = 5 * time.Second

// claimer runs the epoch claims of concurrent callouts in shared
// transactions. Under load a callout costs two Redis round trips (the claim,
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

// send claims a batch in one MULTI/EXEC of plain commands: per key HINCRBY
// n and HMGET e s, then one TIME. The transaction makes each claim atomic
// with respect to advanceScript, as claimScript is, at a fraction of a Lua
// call's cost on the Redis side (Redis's CPU is what a burst of callouts
// spends). go-redis splits a transaction by hash slot on Redis Cluster, and
// each claim names one key, so the batch needs no hash tags.
func (cl *claimer) send(batch []*claimReq) {
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	type cmds struct {
		n  *redis.IntCmd
		es *redis.SliceCmd
	}
	per := make([]cmds, len(batch))
	var now *redis.TimeCmd
	_, err := cl.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, req := range batch {
			k := cl.keys.epoch(req.key)
			per[i] = cmds{n: pipe.HIncrBy(ctx, k, "n", 1), es: pipe.HMGet(ctx, k, "e", "s")}
		}
		now = pipe.Time(ctx)
		return nil
	})
	for i, req := range batch {
		var c claim
		if err == nil {
			c, err = claimOf(per[i].n.Val(), per[i].es.Val(), now.Val())
		}
		if err != nil {
			err = fmt.Errorf("read epoch of %s: %w", req.key, err)
		}
		req.done <- claimRes{c, err}
	}
}

// claimOf builds a claim from the transaction's replies: e and s are absent
// until the key's first sync.
func claimOf(n int64, es []any, now time.Time) (claim, error) {
	if len(es) != 2 {
		return claim{}, fmt.Errorf("unexpected reply %v", es)
	}
	c := claim{callouts: n, since: -1}
	if v, ok := es[0].(string); ok {
		e, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return claim{}, fmt.Errorf("epoch %q: %w", v, err)
		}
		c.epoch = e
	}
	if v, ok := es[1].(string); ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return claim{}, fmt.Errorf("sync start %q: %w", v, err)
		}
		c.since = max(0, now.Sub(time.UnixMilli(ms)).Truncate(time.Millisecond))
	}
	return c, nil
}
