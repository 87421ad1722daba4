package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

const (
	costKeys  = 400 // subscriptions; every phase syncs each once
	e2eProbes = 21
)

// costRounds is how many rounds of (reference, zsync) × (unchanged,
// updated) BenchmarkCost runs; ZSYNC_BENCH_COST_ROUNDS overrides the 5 (single
// rounds on this VM spread by ±20 %, so the median needs a few).
var costRounds = envInt("ZSYNC_BENCH_COST_ROUNDS", 5)

// BenchmarkCost: CPU per sync of the real worker against the bare reference
// sync (refSyncer), unchanged and updated syncs apart, in rounds of the
// same run; Redis round trips per sync, counted; and the idle end-to-end
// time from a callout to Limio updated against the upstream critical path.
//
// How the CPU is counted: the sandboxes run in a helper process (child), so
// this process holds zsync (worker, syncer, clients, Redis clients, asynq)
// or the reference and nothing else; its CPU time (getrusage RUSAGE_SELF,
// user + system, as the kernel accounts it, GC included) over a phase,
// divided by the syncs the phase made. A phase is a fixed set of
// subscriptions each synced once: for zsync, tasks enqueued while no worker
// runs, then a worker.Server started and measured from its start until the
// last task is recorded (the enqueue is the ingress's cost, not the sync's).
func BenchmarkCost(b *testing.B) { once(b, "cost", benchCost) }

// hookedOpt makes asynq's server connection count its round trips too.
type hookedOpt struct {
	asynq.RedisClientOpt
	hook redis.Hook
}

func (o hookedOpt) MakeRedisClient() any {
	c := o.RedisClientOpt.MakeRedisClient().(*redis.Client)
	c.AddHook(o.hook)
	return c
}

// watchSyncer tells watch about each sync as it returns: Limio has been
// written by then (the outcome record follows).
type watchSyncer struct {
	worker.Syncer
	watch atomic.Pointer[func(key string, res syncer.Result)]
}

func (w *watchSyncer) Sync(ctx context.Context, key string, trig syncer.Trigger) (syncer.Outcome, error) {
	out, err := w.Syncer.Sync(ctx, key, trig)
	if f := w.watch.Load(); f != nil && err == nil {
		(*f)(key, out.Result)
	}
	return out, err
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type phase struct {
	cpu   time.Duration // this process's CPU over the phase
	syncs int
	wall  time.Duration
	api   childCounts
	rt    map[string]int // zsync's own Redis client
	rtQ   map[string]int // asynq's server connection
}

func (p phase) perSync() time.Duration { return p.cpu / time.Duration(max(p.syncs, 1)) }

func benchCost(b *testing.B) {
	ctx := b.Context()
	rs := redistest.Start(b)
	rdb := rs.Client(b)
	rt, rtQ := newRTCounter(), newRTCounter()
	rdb.AddHook(rt)
	log := prodLogger(b)
	u := newUpstreams(b, rdb, costKeys, workerLimit, log)
	dc := newDoneCounter()
	wc := worker.Config{Concurrency: workerConcurrency, ShutdownTimeout: 5 * time.Second, Retention: 24 * time.Hour}
	enq := worker.NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), wc.EnqueueConfig(), log)
	trig := syncer.Trigger{Source: syncer.SourceCallout, EventType: "SubscriptionUpdated"}
	redisOpt := hookedOpt{asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB}, rtQ}

	// runZsync syncs every key once with a fresh worker.Server and returns
	// what that cost; want is the outcome every sync must have.
	runZsync := func(want syncer.Result) phase {
		label := pprof.Labels("phase", "zsync-"+string(want)) // go test -cpuprofile: -tagfocus phase=zsync-unchanged
		for _, k := range u.keys {
			if _, _, err := enq.Enqueue(ctx, k, trig, worker.QueueCallouts); err != nil {
				b.Fatal(err)
			}
		}
		srv, err := worker.NewServer(redisOpt, u.s, worker.NewOutcomeStore(rdb, wc.StoreConfig()), rdb, wc, log, worker.WithMetrics(dc))
		if err != nil {
			b.Fatal(err)
		}
		d0, o0, a0, r0, q0 := dc.total.Load(), dc.snapshot(), u.counts(b), rt.snapshot(), rtQ.snapshot()
		t0, c0 := time.Now(), cpuNow()
		var startErr error
		pprof.Do(ctx, label, func(context.Context) { startErr = srv.Start() }) // its goroutines inherit the label
		if startErr != nil {
			b.Fatal(startErr)
		}
		if !waitFor(ctx, 2*time.Minute, func() bool { return dc.total.Load() >= d0+int64(len(u.keys)) }) {
			b.Fatalf("zsync phase: %d of %d syncs done", dc.total.Load()-d0, len(u.keys))
		}
		p := phase{cpu: cpuNow() - c0, wall: time.Since(t0), syncs: int(dc.total.Load() - d0)}
		a1, r1, q1 := u.counts(b), rt.snapshot(), rtQ.snapshot()
		srv.Shutdown()
		if got := dc.snapshot()[want] - o0[want]; got != len(u.keys) {
			b.Fatalf("zsync phase: %d %s of %d: %v", got, want, len(u.keys), dc.snapshot())
		}
		p.api, p.rt, p.rtQ = a1.minus(a0), diff(r0, r1), diff(q0, q1)
		return p
	}
	ref := newRefSyncer(b, u.zuora, u.limio, workerLimit)
	runRef := func(want syncer.Result) phase {
		a0 := u.counts(b)
		t0, c0 := time.Now(), cpuNow()
		keys := make(chan string, len(u.keys))
		for _, k := range u.keys {
			keys <- k
		}
		close(keys)
		var bad atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for range workerConcurrency {
			wg.Go(func() {
				pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("phase", "ref-"+string(want))))
				for k := range keys {
					res, err := ref.sync(ctx, k)
					if err == nil && res != want {
						err = fmt.Errorf("%s: %s, want %s", k, res, want)
					}
					if err != nil {
						bad.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
				}
			})
		}
		wg.Wait()
		p := phase{cpu: cpuNow() - c0, wall: time.Since(t0), syncs: len(u.keys)}
		if n := bad.Load(); n > 0 {
			b.Fatalf("reference: %d syncs failed: %v", n, firstErr.Load())
		}
		p.api = u.counts(b).minus(a0)
		return p
	}

	// Warm-up without latency: zsync creates every subscription in Limio.
	runZsync(syncer.Created)
	u.setLatency(b, workerLatency)

	var refU, zsU, refW, zsW []phase
	for range costRounds {
		refU = append(refU, runRef(syncer.Unchanged))
		zsU = append(zsU, runZsync(syncer.Unchanged))
		u.bump(b, 0, costKeys)
		refW = append(refW, runRef(syncer.Updated))
		u.bump(b, 0, costKeys)
		zsW = append(zsW, runZsync(syncer.Updated))
	}
	if costRounds > 0 {
		costRows(b, "unchanged", refU, zsU)
		costRows(b, "updated", refW, zsW)
	}

	benchE2E(b, rs, rdb, u)
}

// costRows adds the CPU and round-trip rows of one kind of sync.
func costRows(b *testing.B, kind string, ref, zs []phase) {
	ratios := make([]float64, len(ref))
	var refCPU, zsCPU []float64
	for i := range ref {
		ratios[i] = float64(zs[i].perSync()) / float64(ref[i].perSync())
		refCPU = append(refCPU, float64(ref[i].perSync().Microseconds()))
		zsCPU = append(zsCPU, float64(zs[i].perSync().Microseconds()))
	}
	spread := fmtList("%.2f", ratios)
	r := median(slices.Clone(ratios))
	us := func(x float64) string { return fmt.Sprintf("%.0f µs", x) }
	addRow("cost: CPU per "+kind+" sync (zsync vs bare reference)", us(median(slices.Clone(zsCPU))), us(median(slices.Clone(refCPU))),
		fmt.Sprintf("%.2f", r), "≤ 1.5 × ref", check(r <= 1.5))
	// Round trips: totals over the rounds.
	var own, srv map[string]int
	syncs := 0
	for _, p := range zs {
		own, srv = addMaps(own, p.rt), addMaps(srv, p.rtQ)
		syncs += p.syncs
	}
	ownPer, ownList := perUnit(nil, own, float64(syncs))
	srvPer, srvList := perUnit(nil, srv, float64(syncs))
	addRow("cost: Redis round trips per "+kind+" sync (counted)", fmt.Sprintf("%.2f", ownPer+srvPer), "0 (reference)",
		"", "", nil)
	a, ra := zs[0].api, ref[0].api
	addNote("cost, %s syncs: CPU per sync over %d rounds of %d syncs each, zsync %s µs, reference %s µs, ratios %s (median judged); "+
		"API calls per phase zsync %+v, reference %+v; one phase took %v (zsync) / %v (reference); "+
		"Redis round trips per sync %.2f on zsync's shared client (%s) + %.2f on asynq's server connection (%s)",
		kind, len(ref), ref[0].syncs, fmtList("%.0f", zsCPU), fmtList("%.0f", refCPU), spread, a, ra,
		zs[0].wall.Round(time.Millisecond), ref[0].wall.Round(time.Millisecond), ownPer, ownList, srvPer, srvList)
	b.ReportMetric(r, kind+"-cpu-ratio")
}

func diff(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func addMaps(a, b map[string]int) map[string]int {
	if a == nil {
		a = map[string]int{}
	}
	for k, v := range b {
		a[k] += v
	}
	return a
}

// benchE2E: one callout at a time to the real ingress for a subscription
// whose Zuora side just changed, until the sync that updated Limio returned,
// against the upstream critical path of that sync: the sandbox latency
// times the sequential API round trips it made (traced by the sandboxes).
func benchE2E(b *testing.B, rs *redistest.Server, rdb redis.UniversalClient, u *upstreams) {
	ctx := b.Context()
	// The production worker: default concurrency, poll interval, windows.
	wc := worker.Config{ShutdownTimeout: 5 * time.Second, Retention: 24 * time.Hour}
	ws := &watchSyncer{Syncer: u.s}
	srv, err := worker.NewServer(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB}, ws,
		worker.NewOutcomeStore(rdb, wc.StoreConfig()), rdb, wc, prodLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	ingress := serveHTTP(b, newZsyncIngress(b, rdb))
	client := newLoadClient(1)

	var lats []time.Duration
	var depths []float64
	for i := range e2eProbes {
		key := u.keys[i]
		done := make(chan syncer.Result, 4)
		watch := func(k string, res syncer.Result) {
			if k == key {
				done <- res
			}
		}
		ws.watch.Store(&watch)
		u.bump(b, i, 1)
		u.ch.call(b, "/trace", struct{ On bool }{true}, nil)
		// A random phase against the worker's poll of its empty queues.
		time.Sleep(rand.N(300 * time.Millisecond))
		req := calloutFor(ingress, key).WithContext(ctx)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("callout %s: %v %v", key, err, resp)
		}
		resp.Body.Close()
		res := waittest.Recv(b, 30*time.Second, "the sync of "+key, done)
		lat := time.Since(t0)
		if res != syncer.Updated {
			b.Fatalf("callout %s: outcome %s", key, res)
		}
		var calls []tracedCall
		u.ch.call(b, "/trace", struct{ On bool }{false}, &calls)
		lats = append(lats, lat)
		depths = append(depths, float64(sequentialDepth(calls)))
	}
	ws.watch.Store(nil)
	sortDurations(lats)
	depth := median(slices.Clone(depths))
	crit := time.Duration(depth * float64(workerLatency))
	p50 := percentile(lats, 50)
	addRow("e2e: callout → Limio updated p50, idle", ms(p50), fmt.Sprintf("%s critical path", ms(crit)),
		ratio(float64(p50), float64(crit)), "≤ 1.5 × path", check(p50 <= crit*3/2))
	addNote("e2e: %d callouts one at a time (a random 0–300 ms apart) to the real ingress, each for a subscription whose Zuora autoRenew "+
		"had just flipped, until the worker (production defaults: concurrency %d, queue poll %v) returned from the sync that updated Limio: p50 %s, p90 %s, max %s; "+
		"critical path = %v sandbox latency × %.0f sequential API round trips per sync (traced by the sandboxes: the longest chain of "+
		"calls each starting after the previous answered; per probe %s)",
		e2eProbes, wc.WithDefaults().Concurrency, wc.WithDefaults().TaskCheckInterval, ms(p50), ms(percentile(lats, 90)), ms(percentile(lats, 100)),
		workerLatency, depth, fmtList("%.0f", depths))
}

// sequentialDepth is the longest chain of calls in which each started after
// the one before it answered: the round trips a sync waits for in turn.
func sequentialDepth(calls []tracedCall) int {
	slices.SortFunc(calls, func(a, b tracedCall) int { return int(a.Start - b.Start) })
	depth := make([]int, len(calls))
	best := 0
	for i, c := range calls {
		depth[i] = 1
		for j := range i {
			if calls[j].End <= c.Start {
				depth[i] = max(depth[i], depth[j]+1)
			}
		}
		best = max(best, depth[i])
	}
	return best
}

// calloutFor is a Zuora callout for subscription number key.
func calloutFor(base, key string) *http.Request {
	req := calloutRequest(base, 0)
	body := fmt.Sprintf(`{"subscriptionNumber":%q,"eventType":"SubscriptionUpdated"}`, key)
	req.Body, req.ContentLength = nopCloser{strings.NewReader(body)}, int64(len(body))
	return req
}
