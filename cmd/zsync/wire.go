package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/tracing"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/metrics"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
)

// Wiring: config maps its keys onto each component's Config (config's
// WorkerConfig, APIConfig…); here the components are built on them.

// workerConfig is the worker section with the worker's defaults filled in
// (its Prefix names the Redis keys every part shares).
func workerConfig(c *config.Config) worker.Config { return c.WorkerConfig().WithDefaults() }

// newSyncer builds the Zuora and Limio clients (sharing Redis for the
// tenant-wide Zuora limits and the Limio index) and the syncer on top, for
// a command's few syncs (plan, audit): its limiter parks no lease.
func newSyncer(c *config.Config, rdb redis.UniversalClient, log *zap.Logger) (*syncer.Syncer, error) {
	zc, err := newZuoraClient(c, rdb)
	if err != nil {
		return nil, err
	}
	return newSyncerOn(c, rdb, log, zc, nil)
}

// newSyncerOn builds the Limio client and the syncer on zc.
func newSyncerOn(c *config.Config, rdb redis.UniversalClient, log *zap.Logger, zc *zuora.Client, lopts []limio.Option) (*syncer.Syncer, error) {
	lc, err := limio.New(c.LimioConfig(), append(lopts, limio.WithIndex(limio.NewRedisIndex(rdb, "")), limio.WithDialect(c.LimioDialect()))...)
	if err != nil {
		return nil, fmt.Errorf("limio: %w", err)
	}
	return syncer.New(c.SyncerConfig(), zc, lc, log), nil
}

// newUpstream is newSyncer for a long-running process (serve, work, dev):
// it also reports every API call to m (when not nil) and returns the Zuora
// client, which answers the sweep's query; its limiter parks a finished
// request's lease for the next one (zuora.LimitConfig.ParkFor), so the
// caller must Close the client before Redis. With a tracer provider, every
// Zuora and Limio call is a client span.
func newUpstream(c *config.Config, rdb redis.UniversalClient, log *zap.Logger, m *metrics.Metrics, tp ...trace.TracerProvider) (*syncer.Syncer, *zuora.Client, error) {
	var zopts []zuora.Option
	var lopts []limio.Option
	if m != nil {
		zopts = append(zopts, zuora.WithObserver(m.Observer("zuora")))
		lopts = append(lopts, limio.WithObserver(m.Observer("limio")))
	}
	if len(tp) > 0 && tp[0] != nil {
		zopts = append(zopts, zuora.WithHTTPClient(tracedHTTPClient(tp[0])))
		lopts = append(lopts, limio.WithHTTPClient(tracedHTTPClient(tp[0])))
	}
	var obs zuora.LimitObserver
	if m != nil {
		obs = m.ZuoraLimits()
	}
	zc, err := newObservedZuoraClient(c, rdb, obs, log, true, zopts...)
	if err != nil {
		return nil, nil, err
	}
	s, err := newSyncerOn(c, rdb, log, zc, lopts)
	if err != nil {
		_ = zc.Close()
		return nil, nil, err
	}
	return s, zc, nil
}

// newZuoraClient builds the Zuora client under the tenant-wide limits. The
// limiter's state is in Redis, so every client of the tenant, in every
// process, shares it. It parks no lease: its process (a command, a
// selection's query) may exit right after its last request.
func newZuoraClient(c *config.Config, rdb redis.UniversalClient, opts ...zuora.Option) (*zuora.Client, error) {
	return newObservedZuoraClient(c, rdb, nil, nil, false, opts...)
}

// newObservedZuoraClient is newZuoraClient whose limiter tells obs (metrics)
// and log what it did with Zuora's limit headers; both may be nil. With
// park, it parks leases (and must be closed before Redis).
func newObservedZuoraClient(c *config.Config, rdb redis.UniversalClient, obs zuora.LimitObserver, log *zap.Logger,
	park bool, opts ...zuora.Option) (*zuora.Client, error) {
	lc := c.ZuoraLimits()
	lc.Observer, lc.Log = obs, log
	if !park {
		lc.ParkFor = -1
	}
	zc, err := zuora.New(c.ZuoraConfig(), append(opts, zuora.WithLimiter(zuora.NewTenantLimiter(rdb, lc)))...)
	if err != nil {
		return nil, usageError{fmt.Errorf("zuora: %w", err)}
	}
	return zc, nil
}

// tracedHTTPClient makes a client span of every request, named by method
// and host (paths carry ids).
func tracedHTTPClient(tp trace.TracerProvider) *http.Client {
	return &http.Client{Transport: otelhttp.NewTransport(upstream.NewTransport(),
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(tracing.Propagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Host }))}
}

// ingress is the HTTP side: callouts, operator API, asynqmon.
type ingress struct {
	handler http.Handler
	close   func() error
}

// newIngress builds the echo ingress on rdb. planner may be nil (no upstream
// configured): /plan then answers 501. With m, the ingress serves /metrics
// (asynq's queue series too: the ingress is the one exporter of those) and
// counts callouts by what became of them. opts add optional dependencies.
func newIngress(c *config.Config, redisOpt asynq.RedisConnOpt, rdb redis.UniversalClient, planner api.Planner,
	m *metrics.Metrics, log *zap.Logger, opts ...func(*api.Deps)) (*ingress, error) {
	wc := workerConfig(c)
	var enqOpts []worker.Option
	if m != nil {
		enqOpts = append(enqOpts, worker.WithMetrics(m))
	}
	var pre api.Deps // what opts set, for the enqueuer's tracer
	for _, o := range opts {
		o(&pre)
	}
	if pre.Tracer != nil {
		enqOpts = append(enqOpts, worker.WithTracer(pre.Tracer))
	}
	client, closeClient, err := worker.NewPipelinedClient(redisOpt)
	if err != nil {
		return nil, err
	}
	enq := worker.NewEnqueuer(rdb, client, wc.EnqueueConfig(), log, enqOpts...)
	var store api.Outcomes = worker.NewOutcomeStore(rdb, wc.StoreConfig())
	mon := asynqmon.New(asynqmon.Options{RootPath: api.MonitorPath, RedisConnOpt: redisOpt})
	deps := api.Deps{
		Enqueuer: enq,
		Outcomes: store,
		Ready:    func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		Monitor:  mon,
	}
	if planner != nil {
		deps.Planner = planner
	}
	if m != nil {
		if err := m.WatchQueues(asynq.NewInspectorFromRedisClient(rdb)); err != nil {
			log.Warn("asynq queue metrics unavailable", zap.Error(err))
		}
		deps.Metrics = m.Handler()
		deps.HTTPMetrics = m
	}
	for _, o := range opts {
		o(&deps)
	}
	e, err := api.New(c.APIConfig(), deps, log)
	if err != nil {
		_ = mon.Close()
		_ = closeClient()
		return nil, usageError{err}
	}
	return &ingress{handler: e, close: func() error { return errors.Join(mon.Close(), closeClient()) }}, nil
}

// readTimeout bounds reading a whole request, body included: a client that
// trickles its body (before any signature can be checked) can't hold a
// connection longer than Zuora itself waits for an answer (25 s).
const readTimeout = 30 * time.Second

// newHTTPServer is the http.Server every zsync listener uses.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: readTimeout, IdleTimeout: 2 * time.Minute}
}

// serveHTTP serves h on l until ctx ends, then drains for up to grace.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler, grace time.Duration) error {
	srv := newHTTPServer(h)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// zuoraReads is what the worker asks Zuora beside a sync (*zuora.Client):
// the sweep's queries and an account's subscriptions for a fan-out.
type zuoraReads interface {
	worker.SweepSource
	worker.AccountLister
}

// runWorker starts the worker pool with the account fan-out, the sweep's
// scheduler (when sweep.schedule is set) and, with worker.metrics_addr, a
// /metrics listener for m; it stops them gracefully when ctx ends.
func runWorker(ctx context.Context, c *config.Config, redisOpt asynq.RedisConnOpt, rdb redis.UniversalClient,
	s worker.Syncer, zr zuoraReads, m *metrics.Metrics, log *zap.Logger, extra ...worker.Option) error {
	wc := workerConfig(c)
	store := worker.NewOutcomeStore(rdb, wc.StoreConfig())
	var opts []worker.Option
	if m != nil {
		opts = append(opts, worker.WithMetrics(m))
		s = m.Syncer(s)
	}
	opts = append(opts, extra...)
	ws, err := worker.NewServer(redisOpt, s, store, rdb, wc, log, opts...)
	if err != nil {
		return usageError{err}
	}
	enq := worker.NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), wc.EnqueueConfig(), log, opts...)
	ws.Handle(worker.TaskTypeAccount, worker.NewAccountFanout(zr, enq, store, rdb,
		worker.FanoutConfig{Prefix: wc.Prefix}, log, opts...))
	sched, err := newSweep(c, redisOpt, rdb, ws, enq, zr, log, opts...)
	if err != nil {
		return usageError{err}
	}
	ws.Handle(worker.TaskTypeCatchUp, worker.NewCatchUp(zr, enq, log))
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); newLossWatch(c, rdb, ws, log, opts...).Run(watchCtx) }()
	defer func() { stopWatch(); <-watchDone }()
	var metricsDone chan error
	if c.Worker.MetricsAddr != "" {
		l, err := net.Listen("tcp", c.Worker.MetricsAddr)
		if err != nil {
			return fmt.Errorf("worker.metrics_addr: %w", err)
		}
		log.Info("worker metrics and probes listening", zap.String("addr", l.Addr().String()))
		var mh http.Handler
		if m != nil {
			mh = m.Handler()
		}
		checks := []api.Check{
			{Name: "redis", Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
			{Name: "worker", Run: ws.Ready},
		}
		metricsDone = make(chan error, 1)
		go func() { metricsDone <- serveHTTP(ctx, l, api.WorkerHandler(c.APIConfig(), mh, checks), 5*time.Second) }()
	}
	if err := ws.Start(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if sched != nil {
		if err := sched.Start(); err != nil {
			ws.Shutdown()
			return fmt.Errorf("sweep scheduler: %w", err)
		}
	}
	<-ctx.Done()
	log.Info("shutting down worker", zap.Duration("timeout", wc.ShutdownTimeout))
	if sched != nil {
		sched.Shutdown()
	}
	ws.Shutdown()
	if metricsDone != nil {
		if err := <-metricsDone; err != nil {
			log.Warn("worker metrics listener", zap.Error(err))
		}
	}
	return nil
}

// newLossWatch watches for Redis losing its data (worker.LossWatch). On a
// loss it stops the syncs ws (nil in the ingress) runs and enqueues the
// catch-up sweep over sweep.catchup_max; every process enqueues it under the
// same id, so it runs once.
func newLossWatch(c *config.Config, rdb redis.UniversalClient, ws *worker.Server, log *zap.Logger, opts ...worker.Option) *worker.LossWatch {
	w := worker.NewLossWatch(rdb, workerConfig(c).Prefix, 0, log, opts...)
	client := asynq.NewClientFromRedisClient(rdb)
	w.OnLoss(func(ctx context.Context, marker string) {
		if ws != nil {
			if n := ws.CancelRunning(worker.ErrRedisDataLost); n > 0 {
				log.Warn("redis lost its data: running syncs stopped before their next Limio write", zap.Int("syncs", n))
			}
		}
		if c.Sweep.CatchUpMax <= 0 {
			log.Warn("redis lost its data and sweep.catchup_max is 0: no catch-up sweep; re-sync with zsync resync --updated-since")
			return
		}
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		enqueued, err := worker.EnqueueCatchUp(ectx, client, marker, c.Sweep.CatchUpMax, time.Now())
		switch {
		case err != nil:
			log.Error("redis lost its data: the catch-up sweep could not be enqueued; re-sync with zsync resync --updated-since",
				zap.Duration("catchup_max", c.Sweep.CatchUpMax), zap.Error(err))
		case enqueued:
			log.Warn("redis lost its data: catch-up sweep enqueued", zap.String("marker", marker),
				zap.Duration("catchup_max", c.Sweep.CatchUpMax))
		}
	})
	return w
}
