package main

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// devSeed is what `zsync dev` (and `zsync sandbox --seed dev`) loads: four
// subscriptions out of sync between Zuora and Limio, in the APIs' own shapes.
//
//go:embed seed
var devSeed embed.FS

func newSandboxCmd() *cobra.Command {
	var zuoraAddr, limioAddr, seed, clientID, clientSecret string
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the Zuora and Limio sandboxes (in-memory API servers) standalone",
		Long: `Runs both sandboxes until interrupted. They speak the documented Zuora and Limio API
shapes and are driven through /sandbox/... admin endpoints (see README). --seed DIR loads
DIR/zuora/{subscriptions,accounts,orders}/*.json and DIR/limio/{type}/*.json; --seed dev loads
the seed built into the binary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			zs, ls, err := newSandboxes(seed, clientID, clientSecret)
			if err != nil {
				return usageError{err}
			}
			zl, err := net.Listen("tcp", zuoraAddr)
			if err != nil {
				return fmt.Errorf("zuora sandbox: %w", err)
			}
			ll, err := net.Listen("tcp", limioAddr)
			if err != nil {
				return fmt.Errorf("limio sandbox: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "zuora sandbox on http://%s\nlimio sandbox on http://%s\n", zl.Addr(), ll.Addr())
			return serveAll(cmd.Context(), map[net.Listener]http.Handler{zl: zs.Handler(), ll: ls.Handler()})
		},
	}
	f := cmd.Flags()
	f.StringVar(&zuoraAddr, "zuora-addr", "127.0.0.1:8081", "listen address of the Zuora sandbox")
	f.StringVar(&limioAddr, "limio-addr", "127.0.0.1:8082", "listen address of the Limio sandbox")
	f.StringVar(&seed, "seed", "", `seed directory, or "dev" for the built-in seed`)
	f.StringVar(&clientID, "client-id", "sandbox", "client id both sandboxes accept")
	f.StringVar(&clientSecret, "client-secret", "sandbox", "client secret both sandboxes accept")
	return cmd
}

// newSandboxes builds both sandboxes, seeded from seed ("" none, "dev" the
// embedded seed, else a directory).
func newSandboxes(seed, clientID, clientSecret string) (*zuoratest.Server, *limiotest.Server, error) {
	zs := zuoratest.New(zuoratest.WithCredentials(clientID, clientSecret))
	ls := limiotest.New(limiotest.WithCredentials(clientID, clientSecret))
	var root fs.FS
	switch seed {
	case "":
		return zs, ls, nil
	case "dev":
		sub, err := fs.Sub(devSeed, "seed")
		if err != nil {
			return nil, nil, err
		}
		root = sub
	default:
		if st, err := os.Stat(seed); err != nil || !st.IsDir() {
			return nil, nil, fmt.Errorf("--seed %s: not a directory", seed)
		}
		root = os.DirFS(seed)
	}
	if err := seedFrom(root, "zuora", zs.Seed); err != nil {
		return nil, nil, err
	}
	if err := seedFrom(root, "limio", ls.Seed); err != nil {
		return nil, nil, err
	}
	return zs, ls, nil
}

func seedFrom(root fs.FS, dir string, seed func(fs.FS) error) error {
	if _, err := fs.Stat(root, dir); err != nil {
		return nil // a seed may hold only one side
	}
	sub, err := fs.Sub(root, dir)
	if err != nil {
		return err
	}
	if err := seed(sub); err != nil {
		return fmt.Errorf("seed %s: %w", dir, err)
	}
	return nil
}

// serveAll serves each handler on its listener until ctx ends or one fails.
func serveAll(ctx context.Context, hs map[net.Listener]http.Handler) error {
	g, ctx := errgroup.WithContext(ctx)
	for l, h := range hs {
		g.Go(func() error { return serveHTTP(ctx, l, h, 5*time.Second) })
	}
	return g.Wait()
}
