package main

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/metrics"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// inProcess is zsync's ingress and worker in the test's own process, wired
// as the commands wire them (newUpstream, newIngress, runWorker), against the
// dev-seeded sandboxes and a private Redis: for tests that need to reach
// inside (a tracer, the Redis client) where a subprocess would hide it.
type inProcess struct {
	cfg *config.Config
	rdb *redis.Client
	zs  *zuoratest.Server
	url string // the ingress
}

// startInProcess starts the stack; callouts authenticate as zuora /
// calloutPass, operators with opToken. tp, when not nil, traces the
// ingress, the worker and every upstream call. Everything stops when t ends.
func startInProcess(t *testing.T, calloutPass, opToken string, tp trace.TracerProvider) *inProcess {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	zs, ls, err := newSandboxes("dev", "sandbox", "sandbox")
	if err != nil {
		t.Fatal(err)
	}
	zts, lts := httptest.NewServer(zs.Handler()), httptest.NewServer(ls.Handler())
	t.Cleanup(zts.Close)
	t.Cleanup(lts.Close)
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Redis = config.Redis{Addr: rs.Addr, DB: rs.DB}
	c.Zuora.BaseURL, c.Zuora.ClientID, c.Zuora.ClientSecret = zts.URL, "sandbox", "sandbox"
	c.Limio.BaseURL, c.Limio.ClientID, c.Limio.ClientSecret = lts.URL, "sandbox", "sandbox"
	c.Callout.Username, c.Callout.Password, c.Operator.Token = "zuora", calloutPass, opToken
	c.Sweep.Schedule = ""
	if err := c.Validate(config.Need{Ingress: true, Upstream: true}); err != nil {
		t.Fatal(err)
	}

	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	redisOpt := asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB}
	m := metrics.New()
	var (
		tps     []trace.TracerProvider
		ingOpts []func(*api.Deps)
		wOpts   []worker.Option
	)
	if tp != nil {
		tps = append(tps, tp)
		ingOpts = append(ingOpts, func(d *api.Deps) { d.Tracer = tp })
		wOpts = append(wOpts, worker.WithTracer(tp))
	}
	syn, zc, err := newUpstream(c, rdb, log, m, tps...)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newIngress(c, redisOpt, rdb, syn, m, log, ingOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.close() })
	ts := httptest.NewServer(in.handler)
	t.Cleanup(ts.Close)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runWorker(ctx, c, redisOpt, rdb, syn, zc, m, log, wOpts...) }()
	t.Cleanup(func() { stop(); <-done })
	return &inProcess{cfg: c, rdb: rdb, zs: zs, url: ts.URL}
}
