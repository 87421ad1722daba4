package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

const (
	coalesceCallouts = 10000
	coalesceKeys     = 100
	coalesceConns    = 64
	// fakeSyncTime is how long the fake sync takes between reading "Zuora"
	// and writing "Limio": the real syncer's two sequential Zuora round
	// trips at the 50 ms latency of BenchmarkWorker.
	fakeSyncTime = 100 * time.Millisecond
)

// versionSyncer is a worker.Syncer over an in-memory "Zuora" (a version per
// subscription, bumped before each callout) and "Limio" (the version last
// written). It reads the version first and writes it fakeSyncTime later, so
// a callout landing in between needs another sync.
type versionSyncer struct {
	mu    sync.Mutex
	zuora map[string]int64
	limio map[string]int64
	syncs map[string]int
	done  map[string]time.Time // when key's last sync finished
	delay time.Duration
}

func newVersionSyncer(delay time.Duration) *versionSyncer {
	return &versionSyncer{zuora: map[string]int64{}, limio: map[string]int64{}, syncs: map[string]int{},
		done: map[string]time.Time{}, delay: delay}
}

func (f *versionSyncer) bump(key string) {
	f.mu.Lock()
	f.zuora[key]++
	f.mu.Unlock()
}

// Canonical names every id as given: one lock per id.
func (f *versionSyncer) Canonical(_ context.Context, key string) (string, error) { return key, nil }

func (f *versionSyncer) Sync(ctx context.Context, key string, _ syncer.Trigger) (syncer.Outcome, error) {
	f.mu.Lock()
	v := f.zuora[key]
	f.syncs[key]++
	f.mu.Unlock()
	t := time.NewTimer(f.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return syncer.Outcome{Subscription: key}, ctx.Err()
	}
	f.mu.Lock()
	f.limio[key] = v
	f.done[key] = time.Now()
	f.mu.Unlock()
	return syncer.Outcome{Subscription: key, Result: syncer.Updated}, nil
}

// current reports how many keys Limio has at Zuora's version.
func (f *versionSyncer) current(keys []string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, k := range keys {
		if f.limio[k] == f.zuora[k] {
			n++
		}
	}
	return n
}

// startFakeWorker runs a worker.Server with the production defaults except
// concurrency, on syncer s.
func startFakeWorker(b *testing.B, rs *redistest.Server, rdb redis.UniversalClient, s worker.Syncer, concurrency int) worker.Config {
	b.Helper()
	wc := worker.Config{Concurrency: concurrency, ShutdownTimeout: 5 * time.Second, Retention: 24 * time.Hour}
	srv, err := worker.NewServer(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB}, s,
		worker.NewOutcomeStore(rdb, wc.StoreConfig()), rdb, wc, prodLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	return wc
}

// queuesIdle reports whether no task is waiting, running or due again.
func queuesIdle(insp *asynq.Inspector, queues ...string) bool {
	for _, q := range queues {
		qi, err := insp.GetQueueInfo(q)
		if err != nil {
			continue // a queue that never had a task doesn't exist yet
		}
		if qi.Pending+qi.Active+qi.Scheduled+qi.Retry > 0 {
			return false
		}
	}
	return true
}

// BenchmarkCoalescing: 10,000 callouts for 100 subscriptions in one burst
// against a running worker; count syncs per subscription and check that
// every subscription ends at its last version.
func BenchmarkCoalescing(b *testing.B) { once(b, "coalescing", benchCoalescing) }

func benchCoalescing(b *testing.B) {
	ctx := b.Context()
	rs := redistest.Start(b)
	rdb := rs.Client(b)
	fake := newVersionSyncer(fakeSyncTime)
	wc := startFakeWorker(b, rs, rdb, fake, workerConcurrency)
	// The enqueuer on a client of its own, so its round trips are counted
	// apart from the worker's: claims (shared pipelines), asynq's enqueues,
	// and the state read of a task a callout coalesces into (#13).
	erdb := rs.Client(b)
	rt := newRTCounter()
	erdb.AddHook(rt)
	enq := worker.NewEnqueuer(erdb, asynq.NewClientFromRedisClient(erdb), wc.EnqueueConfig(), prodLogger(b))
	insp := asynq.NewInspectorFromRedisClient(rdb)
	keys := make([]string, coalesceKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("A-S%08d", 20000000+i)
	}

	var seq, enqueued, coalesced, errs atomic.Int64
	trig := syncer.Trigger{Source: syncer.SourceCallout, EventType: "SubscriptionUpdated"}
	start := time.Now()
	var wg sync.WaitGroup
	for range coalesceConns {
		wg.Go(func() {
			for {
				i := seq.Add(1) - 1
				if i >= coalesceCallouts {
					return
				}
				key := keys[i%coalesceKeys]
				fake.bump(key) // Zuora changes, then calls out
				st, _, err := enq.Enqueue(ctx, key, trig, worker.QueueCallouts)
				switch {
				case err != nil:
					errs.Add(1)
				case st == worker.Enqueued:
					enqueued.Add(1)
				default:
					coalesced.Add(1)
				}
			}
		})
	}
	wg.Wait()
	burst := time.Since(start)
	rtPer, rtList := perUnit(nil, rt.snapshot(), coalesceCallouts)
	settled := waitFor(ctx, 60*time.Second, func() bool {
		return fake.current(keys) == len(keys) && queuesIdle(insp, worker.QueueCallouts)
	})
	total := time.Since(start)

	fake.mu.Lock()
	maxSyncs, sum := 0, 0
	hist := map[int]int{}
	for _, k := range keys {
		n := fake.syncs[k]
		maxSyncs = max(maxSyncs, n)
		sum += n
		hist[n]++
	}
	fake.mu.Unlock()
	exact := fake.current(keys)
	b.Logf("burst %v, settled %v after start (%v), enqueued %d coalesced %d errors %d, syncs per subscription %v",
		burst, total, settled, enqueued.Load(), coalesced.Load(), errs.Load(), hist)
	b.ReportMetric(float64(maxSyncs), "max-syncs/sub")

	// The design's rule: the first sync starts with the burst; a callout
	// after a sync started waits for the window's end, and its task collects
	// the callouts until it starts. So a burst of length d costs at most
	// 1 + ⌈d/window⌉ syncs per subscription (2 for one under the window).
	window := wc.EnqueueConfig().CoalesceWindow
	if window <= 0 {
		b.Fatalf("coalesce window %v: the scenario needs the production window", window)
	}
	allowed := 1 + int(math.Ceil(burst.Seconds()/window.Seconds()))
	ws := fmtSeconds(window)
	addRow("coalescing: max syncs per subscription", fmt.Sprint(maxSyncs),
		fmt.Sprintf("%d callouts/sub in %.2f s (window %s: ≤ %d)", coalesceCallouts/coalesceKeys, burst.Seconds(), ws, allowed),
		"", fmt.Sprintf("≤ 1 + ⌈burst/%s⌉ (2 for a burst under %s)", ws, ws), check(maxSyncs <= allowed && errs.Load() == 0))
	addRow("coalescing: Redis round trips per callout (the enqueuer's, counted)", fmt.Sprintf("%.2f", rtPer), "", "", "", nil)
	addNote("coalescing Redis round trips per callout, counted by a go-redis hook on the enqueuer's own client (a shared pipeline once), by command and key prefix: %s", rtList)
	addRow("coalescing: subscriptions exact at the end", fmt.Sprintf("%d/%d", exact, len(keys)), "", "", "all",
		check(exact == len(keys) && settled))
	addNote("coalescing: %d Enqueue calls from %d goroutines over %d subscriptions (interleaved, Zuora version bumped before each) "+
		"took %v (%.0f/s) against a running worker.Server (concurrency %d, default lock-wait 1–2 s, coalesce window %s) whose fake sync reads the version, "+
		"waits %v and writes it; %d syncs in all (%.1f per subscription, distribution %v), %d tasks enqueued, %d callouts coalesced; "+
		"a callout after a sync started is held to the window's end, so a burst of %v allows 1 + ⌈%.2f⌉ = %d syncs per subscription",
		coalesceCallouts, coalesceConns, coalesceKeys, burst.Round(time.Millisecond), coalesceCallouts/burst.Seconds(),
		workerConcurrency, ws, fakeSyncTime, sum, float64(sum)/float64(len(keys)), hist, enqueued.Load(), coalesced.Load(),
		burst.Round(time.Millisecond), burst.Seconds()/window.Seconds(), allowed)
}

// fmtSeconds writes d as the table does: "1 s", "0.5 s".
func fmtSeconds(d time.Duration) string { return fmt.Sprintf("%g s", d.Seconds()) }
