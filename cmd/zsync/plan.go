package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

func newPlanCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan ID",
		Short: "Show what a sync of one subscription would change in Limio, without writing",
		Long: `Reads the subscription from Zuora and Limio, as a sync would, and prints the changes a sync
would make now, grouped per Limio object (old → new). Nothing is written to Limio. ID is a
Zuora subscription number (A-S00000271), a Limio id (sub-…) or a Limio reference.
Needs the Zuora and Limio settings of 'zsync work' (and Redis, for the tenant-wide limits).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !worker.ValidID(id) {
				return usageError{fmt.Errorf("%q is not a subscription number, Limio id or reference", id)}
			}
			p, err := start(cmd, config.Need{Upstream: true})
			if err != nil {
				return err
			}
			defer p.close()
			c, log, rdb := p.cfg, p.log, p.rdb
			s, err := newSyncer(c, rdb, log)
			if err != nil {
				return usageError{err}
			}
			out, err := s.DryRun(cmd.Context(), id)
			if err != nil && syncer.ErrorResult(err) != syncer.NotFound {
				return fmt.Errorf("plan %s: %w", id, err)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				writePlan(w, out)
			}
			if err != nil {
				return fmt.Errorf("plan %s: %w", id, err) // not found: exit status 1
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON (the outcome a sync would record)")
	cmd.Flags().String("redis.addr", "", "Redis address (default 127.0.0.1:6379)")
	return cmd
}

// writePlan prints out for people: a headline, then each Limio object's
// changes, in the order the plan lists them.
func writePlan(w io.Writer, out syncer.Outcome) {
	name := out.Subscription
	if out.LimioID != "" {
		name += " (Limio " + out.LimioID + ")"
	}
	switch out.Result {
	case syncer.NotFound:
		fmt.Fprintf(w, "%s: not found in Zuora or Limio; a sync would record not_found\n", name)
		return
	case syncer.Unchanged:
		fmt.Fprintf(w, "%s: Limio matches Zuora; a sync would change nothing\n", name)
		return
	}
	fmt.Fprintf(w, "%s: a sync would record %s with %d change(s); nothing was written\n", name, out.Result, len(out.Changes))
	type object struct {
		kind, id string
		changes  []syncer.Change
	}
	var objects []*object
	byKey := map[string]*object{}
	for _, c := range out.Changes {
		k := c.Object + "\x00" + c.ID
		o := byKey[k]
		if o == nil {
			o = &object{kind: c.Object, id: c.ID}
			byKey[k] = o
			objects = append(objects, o)
		}
		o.changes = append(o.changes, c)
	}
	for _, o := range objects {
		fmt.Fprintf(w, "\n%s %s\n", o.kind, o.id)
		for _, c := range o.changes {
			fmt.Fprintf(w, "  %-6s %s: %s → %s\n", c.Op, c.Field, shown(c.Old), shown(c.New))
		}
	}
}

func shown(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}
