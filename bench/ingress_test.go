package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

const (
	ingressConns  = 64
	ingressRound  = 3 * time.Second // per round; ingressRounds per target, interleaved
	ingressRounds = 5
	ingressWarmup = time.Second
	calloutUser   = "zuora"
	calloutPass   = "bench-callout-password"
	operatorToken = "bench-operator-token"
)

// BenchmarkIngress: callouts accepted per second by zsync's real ingress
// (api.New + worker.Enqueuer, Basic auth, production logger) against a bare
// echo handler doing one asynq Enqueue, same Redis, same load, same run.
func BenchmarkIngress(b *testing.B) { once(b, "ingress", benchIngress) }

func benchIngress(b *testing.B) {
	rs := redistest.Start(b)
	rdb := rs.Client(b)
	rt := newRTCounter() // every client of both targets: claims, enqueues, the reference's enqueue
	rdb.AddHook(rt)
	// Labelled for go test -cpuprofile (-tagfocus target=zsync).
	zsyncURL := serveHTTP(b, labelled("zsync", newZsyncIngress(b, rdb, rt)))
	refURL := serveHTTP(b, labelled("reference", newReferenceIngress(rdb)))

	// The load generator runs in the helper process: this process's CPU
	// time is then the target's (HTTP server, handler, Redis clients).
	gen := startChild(b)
	ctx := b.Context()
	type round struct {
		res loadResult
		cpu time.Duration
		rt  map[string]int
	}
	run := func(base string, d time.Duration) round {
		// Each round starts from an empty Redis, so neither target pays for
		// the other's keys.
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		var out loadResp
		r0, c0 := rt.snapshot(), cpuNow()
		gen.call(b, "/load", loadReq{URL: base, Conns: ingressConns, Millis: int(d / time.Millisecond)}, &out)
		c1, r1 := cpuNow(), rt.snapshot()
		res := out.result()
		if res.ok == 0 {
			b.Fatalf("%s: nothing accepted: %s", base, res.firstErr)
		}
		return round{res, c1 - c0, diff(r0, r1)}
	}
	run(refURL, ingressWarmup)
	run(zsyncURL, ingressWarmup)
	// Rounds are paired (reference, then zsync, back to back) and the ratio
	// is the median of the pairs': this VM's speed drifts by ±15 % within
	// seconds, which a ratio of totals would take as a difference.
	var ref, zs loadResult
	pairs := make([]float64, 0, ingressRounds)
	cpuPairs := make([]float64, 0, ingressRounds)
	var zsCPU, refCPU []float64 // µs per accepted callout, per round
	var zsRT, refRT map[string]int
	cpu0 := sampleCPU()
	for i := range ingressRounds {
		r, z := run(refURL, ingressRound), run(zsyncURL, ingressRound)
		pairs = append(pairs, z.res.rate()/r.res.rate())
		zc, rc := float64(z.cpu.Microseconds())/float64(z.res.ok), float64(r.cpu.Microseconds())/float64(r.res.ok)
		zsCPU, refCPU, cpuPairs = append(zsCPU, zc), append(refCPU, rc), append(cpuPairs, zc/rc)
		zsRT, refRT = addMaps(zsRT, z.rt), addMaps(refRT, r.rt)
		if i == 0 {
			ref, zs = r.res, z.res
		} else {
			ref, zs = ref.merge(r.res), zs.merge(z.res)
		}
	}
	cpu1 := sampleCPU()

	// Where the difference goes: the two enqueue paths alone, no HTTP.
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	wc := worker.Config{Retention: 24 * time.Hour}.WithDefaults()
	enq := worker.NewEnqueuer(rdb, pipelinedClient(b, rdb), wc.EnqueueConfig(), prodLogger(b))
	trig := syncer.Trigger{Source: syncer.SourceCallout, EventType: "SubscriptionUpdated"}
	zsEnq := enqueueRate(ingressConns, 2*time.Second, func(n int64) error {
		_, _, err := enq.Enqueue(ctx, fmt.Sprintf("A-S%09d", n), trig, worker.QueueCallouts)
		return err
	})
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	ac := asynq.NewClientFromRedisClient(rdb)
	refEnq := enqueueRate(ingressConns, 2*time.Second, func(n int64) error {
		_, err := ac.EnqueueContext(ctx, asynq.NewTask("bench:echo", fmt.Appendf(nil, `{"n":%d}`, n)))
		return err
	})

	b.Logf("reference: %s", ref)
	b.Logf("zsync:     %s", zs)
	b.ReportMetric(zs.rate(), "callouts/s")
	b.ReportMetric(ref.rate(), "ref-enqueues/s")
	b.ReportMetric(float64(percentile(zs.lat, 99).Microseconds())/1000, "p99-ms")

	r := median(pairs)
	addRow("ingress: callouts accepted/s @64 conns", fmt.Sprintf("%.0f/s", zs.rate()), fmt.Sprintf("%.0f/s", ref.rate()),
		fmt.Sprintf("%.2f", r), "≥ 0.75 × ref", check(r >= 0.75 && zs.errs == 0))
	p99, refP99 := percentile(zs.lat, 99), percentile(ref.lat, 99)
	addRow("ingress: p99 latency @64 conns", ms(p99), ms(refP99), ratio(float64(p99), float64(refP99)), "≤ 20 ms", check(p99 <= 20*time.Millisecond))
	addRow("ingress: p50 latency @64 conns", ms(percentile(zs.lat, 50)), ms(percentile(ref.lat, 50)),
		ratio(float64(percentile(zs.lat, 50)), float64(percentile(ref.lat, 50))), "", nil)
	cr := median(slices.Clone(cpuPairs))
	addRow("ingress: CPU per callout (zsync vs echo + one enqueue)", fmt.Sprintf("%.0f µs", median(slices.Clone(zsCPU))),
		fmt.Sprintf("%.0f µs", median(slices.Clone(refCPU))), fmt.Sprintf("%.2f", cr), "≤ 1.3 × ref", check(cr <= 1.3))
	zsPer, zsList := perUnit(nil, zsRT, float64(zs.ok))
	refPer, refList := perUnit(nil, refRT, float64(ref.ok))
	addRow("ingress: Redis round trips per callout @64 conns (counted)", fmt.Sprintf("%.2f", zsPer), fmt.Sprintf("%.2f", refPer),
		ratio(zsPer, refPer), "", nil)
	addNote("ingress CPU: this process's getrusage CPU (user + system) per accepted callout in each round, the load generator in "+
		"a helper process; zsync %s µs, reference %s µs, ratios %s (median judged). Redis round trips per callout, counted by a "+
		"go-redis hook on every client (shared pipelines count once): zsync %s; reference %s", fmtList("%.0f", zsCPU),
		fmtList("%.0f", refCPU), fmtList("%.2f", cpuPairs), zsList, refList)
	addRow("ingress: enqueues/s without HTTP (Enqueuer vs asynq)", fmt.Sprintf("%.0f/s", zsEnq), fmt.Sprintf("%.0f/s", refEnq),
		ratio(zsEnq, refEnq), "", nil)
	if zs.errs > 0 || ref.errs > 0 {
		addNote("ingress: errors zsync %d (%s), reference %d (%s)", zs.errs, zs.firstErr, ref.errs, ref.firstErr)
	}
	addNote("ingress: %d closed-loop keep-alive connections, %d interleaved rounds of %v per target after a %v warm-up, "+
		"every callout a new subscription (so every request creates a task); rates are totals over the rounds, the ratio "+
		"is the median of the %d back-to-back (reference, zsync) pairs' ratios %s; the load generator runs in a helper process (its own process, the same two cores); %s",
		ingressConns, ingressRounds, ingressRound, ingressWarmup, ingressRounds, fmtList("%.2f", pairs), cpuSince(cpu0, cpu1))
}

// newZsyncIngress is `zsync serve`'s callout path as wired by cmd/zsync with
// the default config: Basic callout auth, an operator token, the Enqueuer
// with the default worker settings (retention 24h) and the production logger.
func newZsyncIngress(b *testing.B, rdb redis.UniversalClient, hooks ...redis.Hook) http.Handler {
	log := prodLogger(b)
	wc := worker.Config{Retention: 24 * time.Hour}.WithDefaults()
	enq := worker.NewEnqueuer(rdb, pipelinedClient(b, rdb, hooks...), wc.EnqueueConfig(), log)
	e, err := api.New(api.Config{CalloutUsername: calloutUser, CalloutPassword: calloutPass, OperatorToken: operatorToken},
		api.Deps{
			Enqueuer: enq,
			Outcomes: worker.NewOutcomeStore(rdb, wc.StoreConfig()),
			Ready:    func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		}, log)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// pipelinedClient is the ingress's asynq client as cmd/zsync makes it
// (worker.NewPipelinedClient), on rdb's server; hooks see what leaves the
// shared pipelines (added after AutoPipeline, so a batch counts once).
func pipelinedClient(b *testing.B, rdb redis.UniversalClient, hooks ...redis.Hook) *asynq.Client {
	o := rdb.(*redis.Client).Options()
	c := asynq.RedisClientOpt{Addr: o.Addr, DB: o.DB}.MakeRedisClient().(*redis.Client)
	worker.AutoPipeline(c)
	for _, h := range hooks {
		c.AddHook(h)
	}
	b.Cleanup(func() { _ = c.Close() })
	return asynq.NewClientFromRedisClient(c)
}

// newReferenceIngress is the bare minimum the target is measured against:
// echo, one route, the body read, one asynq Enqueue, a JSON answer.
func newReferenceIngress(rdb redis.UniversalClient) http.Handler {
	client := asynq.NewClientFromRedisClient(rdb)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/v1/callouts/zuora", func(c echo.Context) error {
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		info, err := client.EnqueueContext(c.Request().Context(), asynq.NewTask("bench:echo", body))
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		return c.JSON(http.StatusOK, map[string]any{"success": true, "task_id": info.ID})
	})
	return e
}

// calloutRequest is a Zuora callout for subscription number n, sent with
// Basic credentials up front (a client that already saw the challenge).
func calloutRequest(base string, n int64) *http.Request {
	body := fmt.Appendf(nil, `{"subscriptionNumber":"A-S%09d","subscriptionId":"8a8%013d","eventType":"SubscriptionUpdated","accountNumber":"A%08d"}`, n, n, n)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/callouts/zuora", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Zuora-Notification-Id", fmt.Sprintf("bench-%d", n))
	req.SetBasicAuth(calloutUser, calloutPass)
	return req
}

// labelled runs h's requests under the pprof label target=name.
func labelled(name string, h http.Handler) http.Handler {
	labels := pprof.Labels("target", name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pprof.Do(r.Context(), labels, func(ctx context.Context) { h.ServeHTTP(w, r.WithContext(ctx)) })
	})
}

// serveHTTP serves h on a loopback port the way cmd/zsync does (same
// http.Server settings) until the benchmark ends.
func serveHTTP(b testing.TB, h http.Handler) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// enqueueRate calls enqueue from conns goroutines for d and returns the
// successful calls per second.
func enqueueRate(conns int, d time.Duration, enqueue func(n int64) error) float64 {
	var seq, ok atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if enqueue(seq.Add(1)-1) == nil {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds()
}

// median of xs (xs is reordered).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if n := len(xs); n%2 == 1 {
		return xs[n/2]
	} else {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
}

// fmtList prints xs as [x1 x2 …], each with format.
func fmtList(format string, xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
