package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/check"
	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/limio"
)

// errCheckFailed is the exit status 1 of a check with failures (the report
// already says which).
var errCheckFailed = errors.New("check: at least one assumption failed (see above)")

func newCheckCmd() *cobra.Command {
	var asJSON bool
	var subscription, write string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify zsync's assumptions about the configured Zuora and Limio tenants",
		Long: `Checks, on the configured tenants and through the clients a sync uses, every assumption zsync
makes about their APIs, and prints one line per assumption: pass, fail or unknown, the request
made, its status and the part of the answer that decided. Exits 1 when any check fails.

Read-only unless --write names a Limio subscription kept for testing: zsync then rewrites one of
its fields with its own value, writes and restores its status, and creates a scratch schedule
entry (0.00, dated 2099-12-31) which it then cancels. Each write check says what it touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if subscription != "" && !strings.HasPrefix(subscription, "A-S") && !validKey(subscription) {
				return usageError{fmt.Errorf("--subscription %q is not a Zuora subscription number", subscription)}
			}
			if write != "" && !strings.HasPrefix(write, "sub-") {
				return usageError{fmt.Errorf("--write %q: name a Limio subscription id (sub-…) kept for testing", write)}
			}
			p, err := start(cmd, config.Need{Upstream: true})
			if err != nil {
				return err
			}
			defer p.close()
			rep := runCheck(cmd.Context(), p.cfg, p.rdb, subscription, write)
			if err := writeCheck(cmd.OutOrStdout(), rep, asJSON); err != nil {
				return err
			}
			if !rep.OK {
				return errCheckFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.StringVar(&subscription, "subscription", "", "a Zuora subscription number (A-S…) to read with its account, billing preview and order, and to find in Limio")
	f.StringVar(&write, "write", "", "run the write checks against this Limio test subscription (sub-…); without it nothing is written")
	f.String("redis.addr", "", "Redis address (default 127.0.0.1:6379), for the Limio index a sync uses")
	return cmd
}

func validKey(s string) bool { return s != "" && !strings.ContainsAny(s, " /") }

// checkConfig is what check.Run needs from the configuration.
func checkConfig(c *config.Config, rdb redis.UniversalClient, subscription, write string) check.Config {
	cfg := check.Config{
		Zuora:        c.ZuoraConfig(),
		Limio:        c.LimioConfig(),
		Dialect:      c.LimioDialect(),
		Subscription: subscription,
		Write:        write,
	}
	if rdb != nil {
		cfg.Index = limio.NewRedisIndex(rdb, "")
	}
	return cfg
}

// runCheck runs the checks; no Zuora limiter: a handful of calls, and the
// check must not depend on Redis answering.
func runCheck(ctx context.Context, c *config.Config, rdb redis.UniversalClient, subscription, write string) check.Report {
	return check.Run(ctx, checkConfig(c, rdb, subscription, write))
}

func writeCheck(w io.Writer, rep check.Report, asJSON bool) error {
	if asJSON {
		return rep.WriteJSON(w)
	}
	return rep.WriteText(w)
}

// configChecker serves GET /v1/check with the process's configuration.
type configChecker struct {
	c   *config.Config
	rdb redis.UniversalClient
}

func (k configChecker) Check(ctx context.Context, subscription string) check.Report {
	return runCheck(ctx, k.c, k.rdb, subscription, "")
}

// withChecker gives the ingress GET /v1/check when the upstream settings
// are there (without them it answers 501).
func withChecker(c *config.Config, rdb redis.UniversalClient) func(*api.Deps) {
	return func(d *api.Deps) {
		if c.Validate(config.Need{Upstream: true}) == nil {
			d.Checker = configChecker{c: c, rdb: rdb}
		}
	}
}

// devCheck runs the read-only checks against zsync dev's own sandboxes and
// prints the report under the banner.
func devCheck(ctx context.Context, w io.Writer, c *config.Config, rdb redis.UniversalClient) {
	fmt.Fprintln(w, "zsync check against the sandboxes (see README \"Checking the tenants\"):")
	_ = runCheck(ctx, c, rdb, "", "").WriteText(w)
	fmt.Fprintln(w)
}
