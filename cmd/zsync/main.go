// Command zsync keeps Limio subscriptions in sync with Zuora.
//
//	zsync serve     the callout ingress and operator API
//	zsync work      the sync worker pool
//	zsync dev       everything in one process on embedded defaults
//	zsync sandbox   the Zuora and Limio sandboxes, standalone
//
// main is the only place that exits; every subcommand returns an error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "zsync:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "zsync:", err)
		os.Exit(1)
	}
}

// usageError is a bad invocation or configuration (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }
