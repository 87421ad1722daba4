package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// planner plans a sync without writing (*syncer.Syncer).
type planner interface {
	DryRun(ctx context.Context, key string) (syncer.Outcome, error)
}

// auditRow is one line of the drift report.
type auditRow struct {
	Subscription string          `json:"subscription"`
	LimioID      string          `json:"limio_id,omitempty"`
	Outcome      string          `json:"outcome"` // created | updated = drift; unchanged; not_found; invalid; failed
	Changes      []syncer.Change `json:"changes"`
	Error        string          `json:"error,omitempty"`
}

// auditInvalid is the outcome of an id that is not a subscription id.
const auditInvalid = "invalid"

func newAuditCmd() *cobra.Command {
	var (
		sel         selection
		out         string
		asCSV       bool
		concurrency int
	)
	cmd := &cobra.Command{
		Use:   "audit [FILE|-]",
		Short: "Report drift between Zuora and Limio without writing anything",
		Long: `Plans a sync (dry run) of each selected subscription, the same selections as 'zsync resync'
(FILE of ids, - for stdin, or --status/--updated-since), and writes a drift report: JSON lines
{"subscription","outcome","changes","error"} (or CSV with --csv) to stdout or --out FILE.
Outcome created or updated means drift. Nothing is written to Limio; Zuora is read under
the tenant-wide limits. Exit status 0 even with drift, non-zero when an id failed or was invalid.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sel.parse(args); err != nil {
				return err
			}
			if concurrency < 1 {
				return usageError{errors.New("--concurrency must be at least 1")}
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
			src, _, closeSrc, err := sel.source(cmd.InOrStdin(), func() (worker.SubscriptionQuerier, error) {
				return newZuoraClient(c, rdb)
			})
			if err != nil {
				return err
			}
			defer closeSrc()

			w := cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return usageError{err}
				}
				defer f.Close()
				w = f
			}
			rw := newReportWriter(w, asCSV)
			sum, err := audit(cmd.Context(), s, src, concurrency, rw.write)
			if ferr := rw.flush(); err == nil {
				err = ferr
			}
			if out != "" {
				if cerr := w.(*os.File).Close(); err == nil {
					err = cerr
				}
			}
			fmt.Fprintln(cmd.ErrOrStderr(), sum)
			if err != nil {
				return err
			}
			if sum.errors > 0 {
				return fmt.Errorf("audit: %d of %d subscriptions could not be planned", sum.errors, sum.total)
			}
			return nil
		},
	}
	addSelectionFlags(cmd, &sel)
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "write the report to this file instead of stdout")
	f.BoolVar(&asCSV, "csv", false, "write CSV (one row per change) instead of JSON lines")
	f.IntVar(&concurrency, "concurrency", 8, "subscriptions planned at once (Zuora calls also obey zuora.concurrency tenant-wide)")
	return cmd
}

type auditSummary struct {
	total, drift, inSync, notFound, errors int
}

func (s auditSummary) String() string {
	verdict := "no drift"
	if s.drift > 0 {
		verdict = "DRIFT"
	}
	return fmt.Sprintf("audit: %s: %d subscriptions, %d drifted (would be created or updated), %d in sync, %d not found, %d errors",
		verdict, s.total, s.drift, s.inSync, s.notFound, s.errors)
}

// audit plans every id of src, at most n at once, and hands the rows to emit
// in the order of src. Memory is bounded by n: a row waits only for the rows
// before it.
func audit(ctx context.Context, p planner, src worker.IDSource, n int, emit func(auditRow) error) (auditSummary, error) {
	var sum auditSummary
	pending := make(chan chan auditRow, n)
	var planning sync.WaitGroup
	defer planning.Wait() // no plan outlives the call
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(pending)
		sem := make(chan struct{}, n)
		return src(gctx, func(id string) error {
			res := make(chan auditRow, 1)
			select {
			case pending <- res:
			case <-gctx.Done():
				return gctx.Err()
			}
			if !worker.ValidID(id) {
				res <- auditRow{Subscription: id, Outcome: auditInvalid, Changes: []syncer.Change{}, Error: "invalid subscription id"}
				return nil
			}
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			planning.Go(func() {
				defer func() { <-sem }()
				res <- planRow(gctx, p, id)
			})
			return nil
		})
	})
	g.Go(func() error {
		for res := range pending {
			var row auditRow
			select {
			case row = <-res:
			case <-gctx.Done():
				return gctx.Err()
			}
			sum.total++
			switch row.Outcome {
			case string(syncer.Created), string(syncer.Updated):
				sum.drift++
			case string(syncer.Unchanged):
				sum.inSync++
			case string(syncer.NotFound):
				sum.notFound++
			default:
				sum.errors++
			}
			if err := emit(row); err != nil {
				return err
			}
		}
		return nil
	})
	err := g.Wait()
	return sum, err
}

func planRow(ctx context.Context, p planner, id string) auditRow {
	out, err := p.DryRun(ctx, id)
	row := auditRow{Subscription: out.Subscription, LimioID: out.LimioID, Outcome: string(out.Result), Changes: out.Changes}
	if row.Subscription == "" {
		row.Subscription = id
	}
	if row.Changes == nil {
		row.Changes = []syncer.Change{}
	}
	if err != nil {
		row.Outcome, row.Error = string(syncer.ErrorResult(err)), err.Error()
	}
	return row
}

// reportWriter writes rows as JSON lines or CSV.
type reportWriter struct {
	json *json.Encoder
	csv  *csv.Writer
}

func newReportWriter(w io.Writer, asCSV bool) *reportWriter {
	if !asCSV {
		return &reportWriter{json: json.NewEncoder(w)}
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"subscription", "limio_id", "outcome", "object", "id", "op", "field", "old", "new", "error"})
	return &reportWriter{csv: cw}
}

func (r *reportWriter) write(row auditRow) error {
	if r.json != nil {
		return r.json.Encode(row)
	}
	if len(row.Changes) == 0 {
		return r.csv.Write([]string{row.Subscription, row.LimioID, row.Outcome, "", "", "", "", "", "", row.Error})
	}
	for _, c := range row.Changes {
		if err := r.csv.Write([]string{row.Subscription, row.LimioID, row.Outcome, c.Object, c.ID, c.Op, c.Field,
			c.Old, c.New, row.Error}); err != nil {
			return err
		}
	}
	return nil
}

func (r *reportWriter) flush() error {
	if r.csv != nil {
		r.csv.Flush()
		return r.csv.Error()
	}
	return nil
}
