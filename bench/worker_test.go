package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
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
	workerKeys        = 100 // subscriptions cycled through; few, so limiotest's related-object scan stays cheap
	workerLimit       = 40  // tenant concurrency: Zuora's default, the sandbox's and zsync's limiter
	workerLatency     = 50 * time.Millisecond
	workerConcurrency = 64 // enough syncs in flight that the tenant limit, not the pool, binds
	workerRampUp      = 2 * time.Second
	workerWindow      = 3 * time.Second // per window; workerWindows in a row
	workerWindows     = 4
)

// BenchmarkWorker: syncs per second of a real worker.Server running the real
// syncer and clients against the sandboxes, every API call delayed 50 ms,
// against the bound the tenant limit of 40 concurrent Zuora calls allows.
func BenchmarkWorker(b *testing.B) { once(b, "worker", benchWorker) }

// refeeder asks for another sync of each subscription it finishes, while
// again is set.
type refeeder struct {
	worker.Syncer
	again atomic.Pointer[func(key string)]
}

func (r *refeeder) Sync(ctx context.Context, key string, trig syncer.Trigger) (syncer.Outcome, error) {
	out, err := r.Syncer.Sync(ctx, key, trig)
	if f := r.again.Load(); f != nil {
		(*f)(key)
	}
	return out, err
}

func benchWorker(b *testing.B) {
	ctx := b.Context()
	rs := redistest.Start(b)
	rdb := rs.Client(b)
	rt := newRTCounter()
	rdb.AddHook(rt)
	log := prodLogger(b)
	u := newUpstreams(b, rdb, workerKeys, workerLimit, log)
	keys := u.keys

	dc := newDoneCounter()
	// No coalesce window: this scenario re-enqueues each subscription the
	// moment its sync ends, to measure sync capacity; the window would hold
	// every such task back on purpose (the coalescing scenario measures that).
	wc := worker.Config{Concurrency: workerConcurrency, ShutdownTimeout: 5 * time.Second, Retention: 24 * time.Hour,
		CoalesceWindow: -1}
	feed := &refeeder{Syncer: u.s}
	srv, err := worker.NewServer(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB}, feed,
		worker.NewOutcomeStore(rdb, wc.StoreConfig()), rdb, wc, log, worker.WithMetrics(dc))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	enq := worker.NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), wc.EnqueueConfig(), log)
	trig := syncer.Trigger{Source: syncer.SourceCallout, EventType: "SubscriptionUpdated"}
	// Counted, not logged: re-enqueues run in their own goroutines.
	var enqErrs atomic.Int64
	enqueue := func(key string) {
		if _, _, err := enq.Enqueue(ctx, key, trig, worker.QueueCallouts); err != nil && ctx.Err() == nil {
			enqErrs.Add(1)
		}
	}

	// Warm-up without latency: the first sync of each subscription creates
	// it in Limio; the measured syncs then find nothing to change.
	for _, k := range keys {
		enqueue(k)
	}
	if !waitFor(ctx, 2*time.Minute, func() bool { return dc.total.Load() >= workerKeys }) {
		b.Fatalf("warm-up: %d of %d syncs done: %v", dc.total.Load(), workerKeys, dc.snapshot())
	}
	if got := dc.snapshot()[syncer.Created]; got != workerKeys {
		b.Fatalf("warm-up outcomes %v; want %d created", dc.snapshot(), workerKeys)
	}

	u.setLatency(b, workerLatency)

	// Keep the queue full: each finished sync enqueues its subscription
	// again. The new task queues behind the others (FIFO), so the lock it
	// needs has long been released when it starts.
	again := func(key string) { go enqueue(key) }
	feed.again.Store(&again)
	defer feed.again.Store(nil)
	for _, k := range keys {
		enqueue(k)
	}

	time.Sleep(workerRampUp)
	slots := sampleSlots(ctx, rs.Client(b)) // its own client: its ZCARDs are not counted
	c0, d0, o0, t0, cpu0, rt0 := u.counts(b), dc.total.Load(), dc.snapshot(), time.Now(), sampleCPU(), rt.snapshot()
	// Consecutive windows; the rate judged is their median, as this VM's
	// speed drifts within a run (totals are over all of them).
	rates := make([]float64, 0, workerWindows)
	for range workerWindows {
		dw, tw := dc.total.Load(), time.Now()
		time.Sleep(workerWindow)
		rates = append(rates, float64(dc.total.Load()-dw)/time.Since(tw).Seconds())
	}
	c1, d1, o1, t1, cpu1, rt1 := u.counts(b), dc.total.Load(), dc.snapshot(), time.Now(), sampleCPU(), rt.snapshot()
	feed.again.Store(nil)
	inUse := slots()

	if n := enqErrs.Load(); n > 0 {
		b.Errorf("%d enqueues failed", n)
	}
	syncs := float64(d1 - d0)
	if syncs == 0 {
		b.Fatal("no sync finished in the window")
	}
	windowRates := slices.Clone(rates)
	rate := median(rates)
	c := c1.minus(c0)
	zPer, lrPer, lwPer := float64(c.ZuoraReads)/syncs, float64(c.LimioReads)/syncs, float64(c.LimioWrites)/syncs
	bound := float64(workerLimit) / (zPer * workerLatency.Seconds())
	unchanged := o1[syncer.Unchanged] - o0[syncer.Unchanged]
	b.Logf("window: %.0f syncs in %v (%.1f/s), outcomes before %v after %v, api %+v, lock waits %d",
		syncs, t1.Sub(t0).Round(time.Millisecond), rate, o0, o1, c, dc.lockBusy.Load())
	b.ReportMetric(rate, "syncs/s")
	b.ReportMetric(bound, "bound-syncs/s")

	addRow("worker: syncs/s (50 ms API latency, tenant limit 40)", fmt.Sprintf("%.1f/s", rate), fmt.Sprintf("%.1f/s bound", bound),
		fmt.Sprintf("%.2f", rate/bound), "≥ 0.95 × bound", check(rate >= 0.95*bound))
	addRow("worker: Zuora 429s served", fmt.Sprint(c.Throttled), "", "", "0", check(c.Throttled == 0))
	// Judged as printed (2 decimals): the window's edges cut through syncs in
	// flight, so the ratio wobbles by a few thousandths around the true count.
	addRow("worker: Zuora reads per sync", fmt.Sprintf("%.2f", zPer), "", "", "≤ 3", check(math.Round(zPer*100) <= 300))
	// 2: the subscription and its related objects (issue #14 withdrew the
	// target of 1: Limio documents no call returning both).
	addRow("worker: Limio reads per sync", fmt.Sprintf("%.2f", lrPer), "", "", "≤ 2", check(math.Round(lrPer*100) <= 200))
	addRow("worker: Limio writes per unchanged sync", fmt.Sprintf("%.2f", lwPer), "", "", "0",
		check(c.LimioWrites == 0 && unchanged == int(syncs)))
	rtPer, rtList := perUnit(rt0, rt1, syncs)
	addRow("worker: Redis round trips per sync (zsync's client, counted)", fmt.Sprintf("%.2f", rtPer), "", "", "", nil)
	addNote("worker Redis round trips per unchanged sync, counted by a go-redis hook on the client the limiter, Limio index, lock, "+
		"outcome store and enqueuer share (asynq's server polls on its own connection, not counted), by command and key prefix: %s", rtList)
	addNote("worker bound: the tenant limit lets %d Zuora calls be in flight; each takes at least the injected %v, so at most "+
		"%d / %.2f s = %.0f Zuora calls/s; a sync makes %.2f Zuora calls (measured), so the bound is %.0f / %.2f = %.1f syncs/s. "+
		"Limio calls run alongside the Zuora ones and don't count against the tenant limit",
		workerLimit, workerLatency, workerLimit, workerLatency.Seconds(), workerLimit/workerLatency.Seconds(), zPer,
		workerLimit/workerLatency.Seconds(), zPer, bound)
	addNote("worker: real worker.Server (concurrency %d, default retry/lock settings) with the real syncer, zuora and limio clients "+
		"(Redis tenant limiter at %d, Redis Limio index) against zuoratest (tenant limit %d) and limiotest in a helper process, %v latency fault on /v1/ and /api/; "+
		"%d subscriptions, each re-enqueued as its sync ends, measured in %d windows of %v after %v of ramp-up (syncs/s per window %s, the median judged); all %d measured syncs unchanged: %v; lock waits %d; "+
		"tenant-limit slots in use %.1f of %d on average; a Zuora call held its slot %.1f ms on average (slot-seconds / calls); during the window %s",
		workerConcurrency, workerLimit, workerLimit, workerLatency, workerKeys, workerWindows, workerWindow, workerRampUp, fmtList("%.1f", windowRates), int(syncs),
		unchanged == int(syncs), dc.lockBusy.Load(), inUse, workerLimit, 1000*inUse*t1.Sub(t0).Seconds()/float64(c.ZuoraReads), cpuSince(cpu0, cpu1))
}

// sampleSlots samples how many tenant-limit slots are leased (the
// limiter's sorted set) every 5 ms until the returned func is called, which
// returns the average.
func sampleSlots(ctx context.Context, rdb redis.UniversalClient) func() float64 {
	stop, done := make(chan struct{}), make(chan float64)
	go func() {
		var sum, n float64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				done <- sum / max(n, 1)
				return
			case <-t.C:
				if v, err := rdb.ZCard(ctx, "{zuora}:limit:sem").Result(); err == nil {
					sum, n = sum+float64(v), n+1
				}
			}
		}
	}()
	return func() float64 { close(stop); return <-done }
}
