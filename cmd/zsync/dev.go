package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/logging"
	"github.com/zsync/zsync/metrics"
)

func newDevCmd() *cobra.Command {
	var httpAddr, zuoraAddr, limioAddr string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process on embedded defaults (for trying zsync)",
		Long: `Runs an embedded Redis (miniredis), the Zuora and Limio sandboxes seeded with subscriptions
that are out of sync, the ingress, the worker and asynqmon, all in one process, with
authentication off. Not for production: nothing is persisted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd, config.Need{})
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("log.format") {
				c.Log.Format = "console"
			}
			log, err := newLogger(c.Log)
			if err != nil {
				return usageError{err}
			}
			defer func() { _ = log.Sync() }()
			defer logging.RouteThirdParty(log)()
			return runDev(cmd.Context(), cmd.OutOrStdout(), c, log, httpAddr, zuoraAddr, limioAddr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&httpAddr, "http-addr", "127.0.0.1:8080", "ingress listen address")
	f.StringVar(&zuoraAddr, "zuora-addr", "127.0.0.1:8081", "Zuora sandbox listen address")
	f.StringVar(&limioAddr, "limio-addr", "127.0.0.1:8082", "Limio sandbox listen address")
	f.String("log.format", "console", "json or console")
	return cmd
}

func runDev(ctx context.Context, out io.Writer, c *config.Config, log *zap.Logger, httpAddr, zuoraAddr, limioAddr string) error {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return fmt.Errorf("embedded redis: %w", err)
	}
	defer mr.Close()

	zs, ls, err := newSandboxes("dev", "sandbox", "sandbox")
	if err != nil {
		return err
	}
	listeners := map[string]net.Listener{}
	for name, addr := range map[string]string{"ingress": httpAddr, "zuora sandbox": zuoraAddr, "limio sandbox": limioAddr} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: %w (pass another address with the flags)", name, err)
		}
		defer l.Close()
		listeners[name] = l
	}

	// Everything points at the embedded parts; authentication is off.
	c.Redis = config.Redis{Addr: mr.Addr()}
	c.Zuora.BaseURL, c.Zuora.ClientID, c.Zuora.ClientSecret = "http://"+listeners["zuora sandbox"].Addr().String(), "sandbox", "sandbox"
	c.Limio.BaseURL, c.Limio.ClientID, c.Limio.ClientSecret = "http://"+listeners["limio sandbox"].Addr().String(), "sandbox", "sandbox"
	c.Callout.AuthDisabled = true
	if err := c.Validate(config.Need{Ingress: true, Upstream: true}); err != nil {
		return usageError{err}
	}
	redisOpt := asynq.RedisClientOpt{Addr: mr.Addr()}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	m := metrics.New()
	s, zc, err := newUpstream(c, rdb, log, m)
	if err != nil {
		return err
	}
	in, err := newIngress(c, redisOpt, rdb, s, m, log)
	if err != nil {
		return err
	}
	defer in.close()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(ctx, listeners["zuora sandbox"], zs.Handler(), time.Second) })
	g.Go(func() error { return serveHTTP(ctx, listeners["limio sandbox"], ls.Handler(), time.Second) })
	g.Go(func() error { return serveHTTP(ctx, listeners["ingress"], in.handler, 5*time.Second) })
	g.Go(func() error { return runWorker(ctx, c, redisOpt, rdb, s, zc, m, log) })
	g.Go(func() error { advanceClock(ctx, mr); return nil })

	base := "http://" + listeners["ingress"].Addr().String()
	fmt.Fprintf(out, `
zsync dev is running (embedded Redis at %s; nothing is persisted; authentication is off)

  ingress        %s
  asynqmon       %s/monitor/
  zuora sandbox  %s   (admin: /sandbox/requests, /sandbox/faults)
  limio sandbox  %s   (admin: /sandbox/objects/subscriptions/{id}, /sandbox/related/{id})

The seed has four Zuora subscriptions that Limio has out of date: A-S00000201 (renewed),
A-S00000202 (cancelled for bad debt), A-S00000203 (unknown to Limio), A-S00000204 (contact edited).

Trigger a sync the way a Zuora callout would:
  curl -s -X POST %s/api/plugins/zuora/sync/subscription/A-S00000201

See its outcome (the changes made to Limio):
  curl -s %s/v1/subscriptions/A-S00000201/sync

Preview what a sync would change, without writing:
  curl -s %s/v1/subscriptions/A-S00000204/plan

`, mr.Addr(), base, base, c.Zuora.BaseURL, c.Limio.BaseURL, base, base, base)
	log.Info("zsync dev ready", zap.String("ingress", base))
	return g.Wait()
}

// advanceClock moves miniredis's key expiry with the wall clock: miniredis
// only expires keys when told time has passed, and locks and leases rely on
// expiry.
func advanceClock(ctx context.Context, mr *miniredis.Miniredis) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			mr.FastForward(now.Sub(last))
			last = now
		}
	}
}
