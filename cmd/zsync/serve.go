package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/metrics"
	"github.com/zsync/zsync/worker"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the callout ingress, the operator API and asynqmon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := start(cmd, config.Need{Ingress: true})
			if err != nil {
				return err
			}
			defer p.close()
			c, log, rdb := p.cfg, p.log, p.rdb
			redisOpt := p.redisOpt

			// The dry-run endpoint needs the upstream APIs; without them it answers 501.
			m := metrics.New()
			var planner api.Planner
			if c.Validate(config.Need{Upstream: true}) == nil {
				s, zc, err := newUpstream(c, rdb, log, m, p.tp)
				if err != nil {
					return usageError{err}
				}
				defer func() { _ = zc.Close() }() // before p.close closes Redis
				planner = s
			}
			resyncs := newResyncService(cmd.Context(), c, rdb, log) // jobs end with the process
			defer resyncs.stop()
			in, err := newIngress(c, redisOpt, rdb, planner, m, log, func(d *api.Deps) { d.Resyncs = resyncs; d.Tracer = p.tp }, withChecker(c, rdb))
			if err != nil {
				return err
			}
			defer in.close()
			go newLossWatch(c, rdb, nil, log, worker.WithMetrics(m)).Run(cmd.Context())
			l, err := net.Listen("tcp", c.HTTP.Addr)
			if err != nil {
				return fmt.Errorf("http.addr: %w", err)
			}
			log.Info("ingress listening", zap.String("addr", l.Addr().String()))
			return serveHTTP(cmd.Context(), l, in.handler, c.HTTP.ShutdownTimeout)
		},
	}
	cmd.Flags().String("http.addr", "", "listen address (default :8080)")
	cmd.Flags().String("redis.addr", "", "Redis address (default 127.0.0.1:6379)")
	return cmd
}

func newWorkCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "work",
		Short: "Run the sync worker pool",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := start(cmd, config.Need{Upstream: true})
			if err != nil {
				return err
			}
			defer p.close()
			c, log, rdb := p.cfg, p.log, p.rdb
			redisOpt := p.redisOpt
			m := metrics.New()
			s, zc, err := newUpstream(c, rdb, log, m, p.tp)
			if err != nil {
				return usageError{err}
			}
			defer func() { _ = zc.Close() }() // before p.close closes Redis
			log.Info("worker starting", zap.Int("concurrency", c.Worker.Concurrency))
			return runWorker(cmd.Context(), c, redisOpt, rdb, s, zc, m, log, worker.WithTracer(p.tp))
		},
	}
	cmd.Flags().String("redis.addr", "", "Redis address (default 127.0.0.1:6379)")
	cmd.Flags().Int("worker.concurrency", 0, "syncs at once in this process (default 20)")
	cmd.Flags().String("worker.metrics_addr", "", "serve /metrics here, behind the operator credentials (default off)")
	return cmd
}
