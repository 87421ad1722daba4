package worker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/internal/redistest"
)

// On a three-node Redis Cluster (redis.cluster.addrs), the whole path works
// with the production clients: concurrent callouts claimed in shared
// pipelines and enqueued through the auto-pipelined asynq client, a bulk job,
// the worker's epochs, locks and outcomes. Every key lives in its own slot,
// so a command or transaction that spans keys would fail here (CROSSSLOT).
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := redistest.StartCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	opt := asynq.RedisClusterClientOpt{Addrs: addrs}
	cfg := testConfig().WithDefaults()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	client, closeClient, err := NewPipelinedClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeClient() })
	enq := NewEnqueuer(rdb, client, cfg.EnqueueConfig(), log)
	store := NewOutcomeStore(rdb, cfg.StoreConfig())
	fake := newFakeSyncer()

	const keys, perKey = 40, 5
	key := func(i int) string { return fmt.Sprintf("A-S%08d", i) }
	for i := range keys {
		fake.bump(key(i))
	}
	var wg sync.WaitGroup
	statuses := make(map[EnqueueStatus]int)
	var mu sync.Mutex
	for n := range keys * perKey {
		wg.Go(func() {
			st, _, err := enq.Enqueue(t.Context(), key(n%keys), callout, QueueCallouts)
			if err != nil {
				t.Errorf("Enqueue: %v", err)
				return
			}
			mu.Lock()
			statuses[st]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[Enqueued] != keys || statuses[Coalesced] != keys*(perKey-1) {
		t.Fatalf("statuses %v; want %d enqueued, the rest coalesced", statuses, keys)
	}

	srv, err := NewServer(opt, fake, store, rdb, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	// A resync job over the same keys, through the bulk path's own claims.
	jobs := NewJobs(rdb, enq, JobsConfig{}, log)
	job, err := jobs.Create(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, keys)
	for i := range ids {
		ids[i] = key(i)
	}
	if _, err := jobs.Run(t.Context(), job.ID, ListSource(ids)); err != nil {
		t.Fatalf("resync job: %v", err)
	}

	var p JobProgress
	var perr error
	waitFor(t, 30*time.Second, "every subscription synced and recorded on the cluster", func() bool {
		p, perr = jobs.Progress(t.Context(), job.ID)
		current := perr == nil && p.Finished()
		for i := range keys {
			z, l, _ := fake.state(key(i))
			rec, rerr := store.Latest(t.Context(), key(i))
			current = current && z == l && rerr == nil && rec != nil
		}
		return current
	})
	if p.State != JobDone || p.Done.Total() != keys || p.Done.Failed != 0 {
		t.Fatalf("resync job ended %+v; want done, %d outcomes, none failed", p, keys)
	}
	for i := range keys {
		if _, _, syncs := fake.state(key(i)); syncs < 1 || syncs > 3 {
			t.Errorf("%s synced %d times; want 1–3 (callouts, then the job)", key(i), syncs)
		}
	}
}
