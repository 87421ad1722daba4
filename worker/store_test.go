package worker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/syncer"
)

func TestOutcomeStore(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	s := NewOutcomeStore(rdb, StoreConfig{HistoryCap: 3})
	ctx := t.Context()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	if r, err := s.Latest(ctx, "A-S1"); r != nil || err != nil {
		t.Fatalf("Latest of nothing = %v, %v; want nil, nil", r, err)
	}
	// Five runs of one subscription, enqueued by its Limio id.
	for i := range 5 {
		r := Record{Subscription: "A-S1", Key: "sub-1", LimioID: "sub-1", Outcome: syncer.Updated,
			At: at.Add(time.Duration(i) * time.Minute), TaskID: fmt.Sprintf("sub-1:%d", i), Epoch: int64(i)}
		if err := s.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"A-S1", "sub-1"} {
		r, err := s.Latest(ctx, id)
		if err != nil || r == nil || r.TaskID != "sub-1:4" {
			t.Errorf("Latest(%s) = %+v, %v; want task sub-1:4", id, r, err)
		}
		h, err := s.History(ctx, id, 0)
		if err != nil || len(h) != 3 || h[0].Epoch != 4 || h[2].Epoch != 2 {
			t.Errorf("History(%s) = %d records %v; want the 3 newest, newest first", id, len(h), err)
		}
	}
	if h, _ := s.History(ctx, "A-S1", 2); len(h) != 2 {
		t.Errorf("History(n=2) = %d records", len(h))
	}

	// A failure before the syncer resolved the key files under the known
	// subscription.
	if err := s.Record(ctx, Record{Subscription: "sub-1", Key: "sub-1", Outcome: syncer.Failed, Error: "zuora: 503", TaskID: "sub-1:5"}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Latest(ctx, "A-S1"); err != nil || r == nil || r.Outcome != syncer.Failed || r.Subscription != "A-S1" {
		t.Errorf("Latest(A-S1) = %+v, %v; want the failure filed under A-S1", r, err)
	}

	if err := s.RecordSkipped(ctx, "A-S2", syncer.Trigger{Source: syncer.SourceCallout, OrderSource: "shop", NotificationID: "n-1"}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Latest(ctx, "A-S2"); err != nil || r == nil || r.Outcome != syncer.Skipped || r.NotificationID != "n-1" {
		t.Errorf("Latest(A-S2) = %+v, %v; want skipped", r, err)
	}

	all, err := s.Stream(ctx, 100)
	if err != nil || len(all) != 7 {
		t.Fatalf("Stream = %d records, %v; want 7", len(all), err)
	}
	if all[0].Subscription != "A-S2" || all[len(all)-1].TaskID != "sub-1:0" {
		t.Errorf("Stream order: first %s, last %s; want newest first", all[0].Subscription, all[len(all)-1].TaskID)
	}
	if some, _ := s.Stream(ctx, 2); len(some) != 2 {
		t.Errorf("Stream(2) = %d records", len(some))
	}
}

// The stream stays capped (approximately: Redis trims whole nodes).
func TestOutcomeStreamCapped(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	s := NewOutcomeStore(rdb, StoreConfig{StreamMaxLen: 100})
	for i := range 1000 {
		if err := s.Record(t.Context(), Record{Subscription: fmt.Sprintf("A-S%d", i%7), Outcome: syncer.Unchanged}); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.XLen(t.Context(), s.keys.stream()).Val(); n > 300 {
		t.Errorf("stream length %d; want about 100", n)
	}
}

// cmdNames records the names of the single commands a client sends
// (pipelines are not recorded).
type cmdNames struct {
	mu    sync.Mutex
	names []string
}

func (c *cmdNames) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cmdNames) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (c *cmdNames) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.names = append(c.names, cmd.Name())
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

// namedClient is a client of a private Redis whose single commands are
// recorded, connected already (its handshake not recorded).
func namedClient(t *testing.T) (*redis.Client, *cmdNames) {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	names := &cmdNames{}
	rdb.AddHook(names)
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	names.take()
	return rdb, names
}

func (c *cmdNames) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.names
	c.names = nil
	return n
}

// A run that read its subscription's number from Zuora files its record
// under it without looking the key up as an alias (one round trip less per
// sync); one that didn't still looks it up.
func TestRecordResolvedSkipsAliasLookup(t *testing.T) {
	t.Parallel()
	rdb, names := namedClient(t)
	s := NewOutcomeStore(rdb, StoreConfig{})
	ctx := t.Context()
	if err := s.record(ctx, Record{Subscription: "A-S1", Key: "A-S1", Outcome: syncer.Unchanged}, true, nil); err != nil {
		t.Fatal(err)
	}
	if got := names.take(); len(got) != 0 {
		t.Errorf("resolved record sent %v outside its pipeline; want nothing", got)
	}
	if err := s.record(ctx, Record{Subscription: "A-S1", Key: "A-S1", Outcome: syncer.Failed, Error: "zuora: 503"}, false, nil); err != nil {
		t.Fatal(err)
	}
	if got := names.take(); len(got) != 1 || got[0] != "get" {
		t.Errorf("unresolved record sent %v; want one alias get", got)
	}
	if r, err := s.Latest(ctx, "A-S1"); err != nil || r == nil || r.Outcome != syncer.Failed {
		t.Errorf("Latest = %+v, %v; want the failure", r, err)
	}
}

// A caller's commands go in the record's round trip, after its writes, and
// their errors (a NOSCRIPT for a lock release on a fresh Redis) are theirs,
// not the record's.
func TestRecordCarriesCallersCommands(t *testing.T) {
	t.Parallel()
	rdb, names := namedClient(t)
	s := NewOutcomeStore(rdb, StoreConfig{})
	ctx := t.Context()
	rec := Record{Subscription: "A-S1", Key: "A-S1", Outcome: syncer.Unchanged}
	l, err := tryLock(ctx, rdb, "zsync:lock:A-S1", time.Minute)
	if err != nil || l == nil {
		t.Fatalf("tryLock = %v, %v", l, err)
	}
	release := func() (rel *redis.Cmd, err error) {
		err = s.record(ctx, rec, true, func(p redis.Pipeliner) { rel = l.releaseIn(ctx, p) })
		return rel, err
	}

	// First use: the script is unknown to this Redis.
	rel, err := release()
	if err != nil || !redis.HasErrorPrefix(rel.Err(), "NOSCRIPT") {
		t.Fatalf("record with an unloaded release script: %v, release %v; want no error, NOSCRIPT", err, rel.Err())
	}
	if r, err := s.Latest(ctx, "A-S1"); err != nil || r == nil {
		t.Fatalf("Latest = %v, %v; want the record", r, err)
	}
	if err := l.release(ctx); err != nil { // loads the script
		t.Fatal(err)
	}

	if l, err = tryLock(ctx, rdb, "zsync:lock:A-S1", time.Minute); err != nil || l == nil {
		t.Fatalf("tryLock again = %v, %v", l, err)
	}
	names.take()
	if rel, err = release(); err != nil || rel.Err() != nil {
		t.Fatalf("record = %v, release %v; want both fine", err, rel.Err())
	}
	if got := names.take(); len(got) != 0 {
		t.Errorf("record and release sent %v besides their pipeline; want nothing", got)
	}
	if n, err := rdb.Exists(ctx, "zsync:lock:A-S1").Result(); err != nil || n != 0 {
		t.Errorf("lock still there (%d, %v) after the record released it", n, err)
	}
}

// A task's result is written only into its hash as it exists: a task whose
// hash is gone (Redis lost its data) gets no stray hash holding a result,
// which asynq's enqueue would take for an existing task of that id.
func TestTaskResultOnlyIntoExistingTask(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	live, gone := asynqTaskKey(QueueCallouts, "A‑S1:0"), asynqTaskKey(QueueCallouts, "A‑S2:0")
	if err := rdb.HSet(ctx, live, "state", "active").Err(); err != nil {
		t.Fatal(err)
	}
	pipe := rdb.Pipeline()
	writeResultScript.Eval(ctx, pipe, []string{live}, "r1")
	writeResultScript.Eval(ctx, pipe, []string{gone}, "r2")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.HGet(ctx, live, "result").Result(); err != nil || v != "r1" {
		t.Errorf("live task's result = %q, %v; want r1", v, err)
	}
	if n, err := rdb.Exists(ctx, gone).Result(); err != nil || n != 0 {
		t.Errorf("a hash was made for a task that doesn't exist (%d, %v)", n, err)
	}
}

// A record that never reached Redis is an error, even though go-redis
// leaves the commands of a pipeline that never ran without one.
func TestRecordFailsWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	s := NewOutcomeStore(rs.Client(t), StoreConfig{})
	rs.Stop()
	rec := Record{Subscription: "A-S1", Key: "A-S1", Outcome: syncer.Unchanged}
	if err := s.record(t.Context(), rec, true, nil); err == nil {
		t.Error("record with Redis down: no error")
	}
	if err := s.record(t.Context(), rec, true, func(p redis.Pipeliner) { p.Get(t.Context(), "x") }); err == nil {
		t.Error("record with a caller's command and Redis down: no error")
	}
}
