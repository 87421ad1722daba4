package main

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/buildinfo"
	"github.com/zsync/zsync/internal/logging"
	"github.com/zsync/zsync/internal/tracing"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "zsync",
		Short:         "Keep Limio subscriptions in sync with Zuora",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Get().String(),
	}
	root.SetVersionTemplate("zsync {{.Version}}\n")
	root.PersistentFlags().String("config", "", "configuration file (default ./zsync.yaml when present)")
	root.AddCommand(newServeCmd(), newWorkCmd(), newDevCmd(), newSandboxCmd())
	root.AddCommand(newPlanCmd(), newStatusCmd(), newCheckCmd())
	root.AddCommand(newResyncCmd(), newAuditCmd())
	root.AddCommand(newProbeCmd())
	return root
}

// loadConfig reads the configuration for cmd and validates what it needs.
func loadConfig(cmd *cobra.Command, need config.Need) (*config.Config, error) {
	file, _ := cmd.Flags().GetString("config")
	flags := pflag.NewFlagSet("all", pflag.ContinueOnError)
	flags.AddFlagSet(cmd.Flags())
	flags.AddFlagSet(cmd.InheritedFlags())
	c, err := config.Load(file, flags)
	if err != nil {
		return nil, usageError{err}
	}
	if err := c.Validate(need); err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// process is what every subcommand that talks to Redis starts from: its
// validated configuration, the logger, and the Redis connections.
type process struct {
	cfg      *config.Config
	log      *zap.Logger
	unroute  func() // puts the libraries' own loggers back
	tp       trace.TracerProvider
	tpStop   func(context.Context) error
	redisOpt asynq.RedisConnOpt
	rdb      redis.UniversalClient
}

// start loads and validates the configuration cmd needs, builds the logger
// and connects to Redis. The caller defers close.
func start(cmd *cobra.Command, need config.Need) (*process, error) {
	c, err := loadConfig(cmd, need)
	if err != nil {
		return nil, err
	}
	log, err := newLogger(c.Log)
	if err != nil {
		return nil, usageError{err}
	}
	redisOpt, rdb, err := redisConn(c.Redis)
	if err != nil {
		_ = log.Sync()
		return nil, usageError{err}
	}
	tp, tpStop, err := tracing.New(cmd.Context(), c.Otel.Endpoint, "zsync-"+cmd.Name())
	if err != nil {
		_ = rdb.Close()
		_ = log.Sync()
		return nil, usageError{err}
	}
	return &process{cfg: c, log: log, unroute: logging.RouteThirdParty(log), tp: tp, tpStop: tpStop, redisOpt: redisOpt, rdb: rdb}, nil
}

func (p *process) close() {
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := p.tpStop(sctx); err != nil {
		p.log.Warn("flushing traces", zap.Error(err))
	}
	cancel()
	_ = p.rdb.Close()
	p.unroute()
	_ = p.log.Sync()
}
