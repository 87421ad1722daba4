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
	"go.uber.org/zap"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
)

// Wiring: each component gets its section of config.Config, translated here
// and nowhere else.

func workerConfig(c *config.Config) worker.Config {
	return worker.Config{
		Concurrency:     c.Worker.Concurrency,
		Queues:          map[string]int{worker.QueueCallouts: c.Worker.CalloutsWeight, worker.QueueBulk: c.Worker.BulkWeight},
		MaxRetry:        c.Worker.MaxRetry,
		TaskTimeout:     c.Worker.Timeout,
		Retention:       c.Worker.Retention,
		ShutdownTimeout: c.Worker.ShutdownTimeout,
		LockTTL:         c.Worker.LockTTL,
	}.WithDefaults()
}

func apiConfig(c *config.Config) api.Config {
	return api.Config{
		CalloutUsername:    c.Callout.Username,
		CalloutPassword:    c.Callout.Password,
		HMACSecret:         c.Callout.HMACSecret,
		HMACHeader:         c.Callout.HMACHeader,
		HMACAlgorithm:      c.Callout.HMACAlgorithm,
		HMACEncoding:       c.Callout.HMACEncoding,
		AllowIPs:           c.Callout.AllowIPs,
		TrustedProxies:     c.Callout.TrustedProxies,
		AuthDisabled:       c.Callout.AuthDisabled,
		OperatorToken:      c.Operator.Token,
		OperatorUsername:   c.Operator.Username,
		OperatorPassword:   c.Operator.Password,
		MaxBodyBytes:       c.Callout.MaxBodyBytes,
		LoopSources:        c.LoopGuard.Sources,
		IntegrationUserIDs: c.LoopGuard.IntegrationUserIDs,
	}
}

func syncerConfig(c *config.Config) syncer.Config {
	return syncer.Config{
		IntegrationUserIDs: c.LoopGuard.IntegrationUserIDs,
		LoopSources:        c.LoopGuard.Sources,
		Offers:             c.Catalog.Offers,
	}
}

// newSyncer builds the Zuora and Limio clients (sharing Redis for the
// tenant-wide Zuora limits and the Limio index) and the syncer on top.
func newSyncer(c *config.Config, rdb redis.UniversalClient, log *zap.Logger) (*syncer.Syncer, error) {
	limiter := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{
		Concurrency: c.Zuora.Concurrency,
		PerMinute:   c.Zuora.RatePerMinute,
		Lease:       c.Zuora.Timeout + 10*time.Second, // a slot outlives any request it covers
	})
	zc, err := zuora.New(zuora.Config{
		BaseURL: c.Zuora.BaseURL, ClientID: c.Zuora.ClientID, ClientSecret: c.Zuora.ClientSecret,
		Version: c.Zuora.Version, Timeout: c.Zuora.Timeout,
	}, zuora.WithLimiter(limiter))
	if err != nil {
		return nil, fmt.Errorf("zuora: %w", err)
	}
	lc, err := limio.New(limio.Config{
		BaseURL: c.Limio.BaseURL, ClientID: c.Limio.ClientID, ClientSecret: c.Limio.ClientSecret,
		Timeout: c.Limio.Timeout,
	}, limio.WithIndex(limio.NewRedisIndex(rdb, "")))
	if err != nil {
		return nil, fmt.Errorf("limio: %w", err)
	}
	return syncer.New(syncerConfig(c), zc, lc, log), nil
}

// ingress is the HTTP side: callouts, operator API, asynqmon.
type ingress struct {
	handler http.Handler
	close   func() error
}

// newIngress builds the echo ingress on rdb. planner may be nil (no upstream
// configured): /plan then answers 501.
func newIngress(c *config.Config, redisOpt asynq.RedisConnOpt, rdb redis.UniversalClient, planner api.Planner, log *zap.Logger) (*ingress, error) {
	wc := workerConfig(c)
	client := asynq.NewClientFromRedisClient(rdb)
	enq := worker.NewEnqueuer(rdb, client, wc.EnqueueConfig(), log)
	store := worker.NewOutcomeStore(rdb, wc.StoreConfig())
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
	e, err := api.New(apiConfig(c), deps, log)
	if err != nil {
		_ = mon.Close()
		return nil, usageError{err}
	}
	return &ingress{handler: e, close: mon.Close}, nil
}

// serveHTTP serves h on l until ctx ends, then drains for up to grace.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
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

// runWorker starts the worker pool and stops it gracefully when ctx ends.
func runWorker(ctx context.Context, c *config.Config, redisOpt asynq.RedisConnOpt, rdb redis.UniversalClient,
	s worker.Syncer, log *zap.Logger) error {
	wc := workerConfig(c)
	store := worker.NewOutcomeStore(rdb, wc.StoreConfig())
	ws, err := worker.NewServer(redisOpt, s, store, rdb, wc, log)
	if err != nil {
		return usageError{err}
	}
	if err := ws.Start(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	<-ctx.Done()
	log.Info("shutting down worker", zap.Duration("timeout", wc.ShutdownTimeout))
	ws.Shutdown()
	return nil
}
