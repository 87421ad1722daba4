package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/worker"
)

const maxStatusHistory = 100

func newStatusCmd() *cobra.Command {
	var asJSON bool
	var n int
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show the latest sync outcome of one subscription and its history",
		Long: `Reads the recorded outcomes from Redis (the same records as GET /v1/subscriptions/{id}/sync):
the latest, with its changes or error, and the ones before it, newest first. ID is any id form the
service has seen for the subscription (Zuora number, Limio id or reference).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !worker.ValidID(id) {
				return usageError{fmt.Errorf("%q is not a subscription number, Limio id or reference", id)}
			}
			if n < 0 || n > maxStatusHistory {
				return usageError{fmt.Errorf("-n must be 0..%d", maxStatusHistory)}
			}
			p, err := start(cmd, config.Need{})
			if err != nil {
				return err
			}
			defer p.close()
			c, rdb := p.cfg, p.rdb
			store := worker.NewOutcomeStore(rdb, workerConfig(c).StoreConfig())
			ctx := cmd.Context()
			latest, err := store.Latest(ctx, id)
			if err != nil {
				return err
			}
			var hist []worker.Record
			if n > 0 {
				// One more than asked: the head of the history is the latest.
				if hist, err = store.History(ctx, id, n+1); err != nil {
					return err
				}
			}
			if latest == nil && len(hist) == 0 {
				return errors.New("no sync recorded for " + id)
			}
			hist = worker.Older(latest, hist)
			hist = hist[:min(len(hist), n)]
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				// The shape of GET /v1/subscriptions/{id}/sync.
				return enc.Encode(struct {
					Subscription string          `json:"subscription"`
					Latest       *worker.Record  `json:"latest"`
					History      []worker.Record `json:"history"`
				}{id, latest, hist})
			}
			writeStatus(w, latest, hist)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the records as JSON")
	cmd.Flags().IntVarP(&n, "history", "n", 10, "history records to show, newest first (0..100)")
	cmd.Flags().String("redis.addr", "", "Redis address (default 127.0.0.1:6379)")
	return cmd
}

func writeStatus(w io.Writer, latest *worker.Record, hist []worker.Record) {
	if latest != nil {
		r := latest
		name := r.Subscription
		if r.LimioID != "" {
			name += " (Limio " + r.LimioID + ")"
		}
		fmt.Fprintf(w, "%s: %s at %s\n", name, r.Outcome, r.At.Format(time.RFC3339))
		fmt.Fprintf(w, "  trigger %s, task %s (queue %s, attempt %d), took %dms\n",
			r.Trigger.Source, r.TaskID, r.Queue, r.Attempt, r.DurationMS)
		if r.Reason != "" {
			fmt.Fprintf(w, "  reason: %s\n", r.Reason)
		}
		if r.Error != "" {
			archived := ""
			if r.Archived {
				archived = " (archived: re-run it from asynqmon or with zsync resync)"
			}
			fmt.Fprintf(w, "  error: %s%s\n", r.Error, archived)
		}
		for _, c := range r.Changes {
			fmt.Fprintf(w, "  %-6s %s %s %s: %s → %s\n", c.Op, c.Object, c.ID, c.Field, shown(c.Old), shown(c.New))
		}
	}
	if len(hist) == 0 {
		return
	}
	fmt.Fprintf(w, "\nhistory (newest first):\n")
	for _, r := range hist {
		detail := ""
		switch {
		case r.Error != "":
			detail = "error: " + r.Error
		case len(r.Changes) > 0:
			detail = fmt.Sprintf("%d change(s)", len(r.Changes))
		case r.Reason != "":
			detail = r.Reason
		}
		fmt.Fprintf(w, "  %s  %-9s  %-7s  %s\n", r.At.Format(time.RFC3339), r.Outcome, r.Trigger.Source, detail)
	}
}
