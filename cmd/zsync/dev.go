package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/logging"
	"github.com/zsync/zsync/internal/tracing"
	"github.com/zsync/zsync/metrics"
	"github.com/zsync/zsync/worker"
)

// devAddrs are where zsync dev listens.
type devAddrs struct {
	http, zuora, limio, redis string
	configOut                 string // the config file for the operator commands
}

func newDevCmd() *cobra.Command {
	var a devAddrs
	var portBase int
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process on embedded defaults (for trying zsync)",
		Long: `Runs an embedded Redis (miniredis), the Zuora and Limio sandboxes seeded with subscriptions
that are out of sync, the ingress, the worker and asynqmon, all in one process, with
authentication off. Not for production: nothing is persisted.

It writes a configuration file (--write-config, printed at start, removed at exit) with which
the operator commands reach this stack: zsync status|plan|resync|audit --config FILE.
--port-base N moves every port: ingress N, Zuora sandbox N+1, Limio sandbox N+2, Redis N+3.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd, config.Need{})
			if err != nil {
				return err
			}
			if portBase != 0 {
				if portBase < 1 || portBase > 65535-3 {
					return usageError{fmt.Errorf("--port-base must be 1..%d", 65535-3)}
				}
				for flag, p := range map[string]*string{"http-addr": &a.http, "zuora-addr": &a.zuora, "limio-addr": &a.limio, "redis-addr": &a.redis} {
					if !cmd.Flags().Changed(flag) {
						*p = "127.0.0.1:" + strconv.Itoa(portBase+devPortOffset[flag])
					}
				}
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
			return runDev(cmd.Context(), cmd.OutOrStdout(), c, log, a)
		},
	}
	f := cmd.Flags()
	f.IntVar(&portBase, "port-base", 0, "move every port: ingress N, Zuora sandbox N+1, Limio sandbox N+2, Redis N+3")
	f.StringVar(&a.http, "http-addr", "127.0.0.1:8080", "ingress listen address")
	f.StringVar(&a.zuora, "zuora-addr", "127.0.0.1:8081", "Zuora sandbox listen address")
	f.StringVar(&a.limio, "limio-addr", "127.0.0.1:8082", "Limio sandbox listen address")
	f.StringVar(&a.redis, "redis-addr", "127.0.0.1:0", "embedded Redis listen address (default: any free port)")
	f.StringVar(&a.configOut, "write-config", filepath.Join(os.TempDir(), "zsync-dev.yaml"),
		"write the configuration the operator commands use to reach this stack here")
	f.String("log.format", "console", "json or console")
	return cmd
}

var devPortOffset = map[string]int{"http-addr": 0, "zuora-addr": 1, "limio-addr": 2, "redis-addr": 3}

func runDev(ctx context.Context, out io.Writer, c *config.Config, log *zap.Logger, a devAddrs) error {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr(a.redis); err != nil {
		return fmt.Errorf("embedded redis: %w (pass another address with --redis-addr or --port-base)", err)
	}
	defer mr.Close()

	zs, ls, err := newSandboxes("dev", "sandbox", "sandbox")
	if err != nil {
		return err
	}
	listeners := map[string]net.Listener{}
	for name, addr := range map[string]string{"ingress": a.http, "zuora sandbox": a.zuora, "limio sandbox": a.limio} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: %w (pass other addresses with --port-base or the -addr flags)", name, err)
		}
		defer l.Close()
		listeners[name] = l
	}

	// Everything points at the embedded parts; authentication is off.
	c.Redis = config.Redis{Addr: mr.Addr()}
	c.HTTP.Addr = listeners["ingress"].Addr().String()
	c.Zuora.BaseURL, c.Zuora.ClientID, c.Zuora.ClientSecret = "http://"+listeners["zuora sandbox"].Addr().String(), "sandbox", "sandbox"
	c.Limio.BaseURL, c.Limio.ClientID, c.Limio.ClientSecret = "http://"+listeners["limio sandbox"].Addr().String(), "sandbox", "sandbox"
	c.Callout.AuthDisabled = true
	if err := c.Validate(config.Need{Ingress: true, Upstream: true}); err != nil {
		return usageError{err}
	}
	redisOpt := asynq.RedisClientOpt{Addr: mr.Addr()}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	tp, tpStop, err := tracing.New(ctx, c.Otel.Endpoint, "zsync-dev")
	if err != nil {
		return usageError{err}
	}
	defer func() { _ = tpStop(context.Background()) }()
	m := metrics.New()
	s, zc, err := newUpstream(c, rdb, log, m, tp)
	if err != nil {
		return err
	}
	// Before Redis goes: the limiter gives back its parked leases.
	defer func() { _ = zc.Close() }()

	resyncs := newResyncService(ctx, c, rdb, log) // jobs end with the process
	defer resyncs.stop()
	in, err := newIngress(c, redisOpt, rdb, s, m, log, func(d *api.Deps) { d.Resyncs = resyncs; d.Tracer = tp }, withChecker(c, rdb))
	if err != nil {
		return err
	}
	defer in.close()

	if err := writeDevConfig(a.configOut, c); err != nil {
		return fmt.Errorf("--write-config: %w", err)
	}
	defer os.Remove(a.configOut)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(ctx, listeners["zuora sandbox"], zs.Handler(), time.Second) })
	g.Go(func() error { return serveHTTP(ctx, listeners["limio sandbox"], ls.Handler(), time.Second) })
	g.Go(func() error { return serveHTTP(ctx, listeners["ingress"], in.handler, 5*time.Second) })
	g.Go(func() error { return runWorker(ctx, c, redisOpt, rdb, s, zc, m, log, worker.WithTracer(tp)) })
	g.Go(func() error { advanceClock(ctx, mr); return nil })

	base := "http://" + listeners["ingress"].Addr().String()
	cf := a.configOut
	fmt.Fprintf(out, `
zsync dev is running (embedded Redis at %s; nothing is persisted; authentication is off)

  ingress        %s
  asynqmon       %s/monitor/
  zuora sandbox  %s   (admin: /sandbox/requests, /sandbox/faults)
  limio sandbox  %s   (admin: /sandbox/objects/subscriptions/{id}, /sandbox/related/{id})
  config         %s   (for the operator commands; removed when zsync dev stops)

The seed has four Zuora subscriptions that Limio has out of date: A-S00000201 (renewed),
A-S00000202 (cancelled for bad debt), A-S00000203 (unknown to Limio), A-S00000204 (contact edited).

Trigger a sync the way a Zuora callout would:
  curl -s -X POST %s/api/plugins/zuora/sync/subscription/A-S00000201

See its outcome (the changes made to Limio):
  curl -s %s/v1/subscriptions/A-S00000201/sync

Preview what a sync would change, without writing:
  curl -s %s/v1/subscriptions/A-S00000204/plan

Re-sync in bulk, and follow the job:
  curl -s -X POST -H 'Content-Type: application/json' -d '{"ids":["A-S00000202","A-S00000203"]}' %s/v1/resyncs

The operator commands, against this stack (bin/zsync after make build, or go run ./cmd/zsync):
  zsync status --config %s A-S00000201
  zsync plan   --config %s A-S00000204
  zsync resync --config %s --status Active
  zsync audit  --config %s
  zsync check  --config %s

`, mr.Addr(), base, base, c.Zuora.BaseURL, c.Limio.BaseURL, cf, base, base, base, base, cf, cf, cf, cf, cf)
	devCheck(ctx, out, c, rdb)
	log.Info("zsync dev ready", zap.String("ingress", base), zap.String("config", cf))
	return g.Wait()
}

// writeDevConfig writes the keys the operator commands need to reach the dev
// stack: its Redis, its ingress and the sandboxes (whose credentials are
// public). Values are quoted as YAML strings.
func writeDevConfig(path string, c *config.Config) error {
	q := strconv.Quote
	body := fmt.Sprintf(`# Written by zsync dev (pid %d). The operator commands reach that stack with it:
#   zsync status|plan|resync|audit --config %s
# It is removed when zsync dev stops; its Redis is in memory and gone with it.
redis:
  addr: %s
http:
  addr: %s
zuora:
  base_url: %s
  client_id: %s
  client_secret: %s
limio:
  base_url: %s
  client_id: %s
  client_secret: %s
`, os.Getpid(), path, q(c.Redis.Addr), q(c.HTTP.Addr), q(c.Zuora.BaseURL), q(c.Zuora.ClientID), q(c.Zuora.ClientSecret),
		q(c.Limio.BaseURL), q(c.Limio.ClientID), q(c.Limio.ClientSecret))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(body), 0o600)
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
