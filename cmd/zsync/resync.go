package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/mattn/go-isatty"
	"github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
)

// selection is the ids a resync or an audit covers: a file (or stdin), or a
// Zuora query.
type selection struct {
	file         string // "" when querying Zuora; "-" for stdin
	status       string
	updatedSince string
}

func addSelectionFlags(cmd *cobra.Command, sel *selection) {
	cmd.Flags().StringVar(&sel.status, "status", "", "select the Zuora subscriptions with this status (e.g. Active)")
	cmd.Flags().StringVar(&sel.updatedSince, "updated-since", "", "select the Zuora subscriptions updated since this date (YYYY-MM-DD or RFC 3339)")
	cmd.Flags().String("redis.addr", "", "Redis address (default 127.0.0.1:6379)")
}

// parse checks the arguments: one FILE (or -), or the query flags.
func (sel *selection) parse(args []string) error {
	query := sel.status != "" || sel.updatedSince != ""
	switch {
	case len(args) > 1:
		return usageError{errors.New("at most one FILE (or - for stdin)")}
	case len(args) == 1 && query:
		return usageError{errors.New("give a FILE or --status/--updated-since, not both")}
	case len(args) == 0 && !query:
		return usageError{errors.New("give a FILE of ids (or - for stdin), or --status and/or --updated-since")}
	case len(args) == 1:
		sel.file = args[0]
	}
	return nil
}

func (sel *selection) query() (zuora.SubscriptionQuery, error) {
	q := zuora.SubscriptionQuery{Status: sel.status}
	if sel.updatedSince != "" {
		t, err := zuora.ParseUpdatedSince(sel.updatedSince)
		if err != nil {
			return q, usageError{fmt.Errorf("--updated-since %q: %w", sel.updatedSince, err)}
		}
		q.UpdatedSince = t
	}
	return q, nil
}

// source opens the selection. release closes the file.
func (sel *selection) source(stdin io.Reader, z func() (worker.SubscriptionQuerier, error)) (src worker.IDSource, desc string, release func(), err error) {
	release = func() {}
	if sel.file != "" {
		if sel.file == "-" {
			return worker.LinesSource(stdin), "stdin", release, nil
		}
		f, err := os.Open(sel.file)
		if err != nil {
			return nil, "", release, usageError{err}
		}
		return worker.LinesSource(f), "file " + sel.file, func() { _ = f.Close() }, nil
	}
	q, err := sel.query()
	if err != nil {
		return nil, "", release, err
	}
	zc, err := z()
	if err != nil {
		return nil, "", release, err
	}
	return worker.ZuoraSource(zc, q), describeQuery(q), release, nil
}

func describeQuery(q zuora.SubscriptionQuery) string {
	parts := []string{"zuora query"}
	if q.Status != "" {
		parts = append(parts, "status="+q.Status)
	}
	if !q.UpdatedSince.IsZero() {
		parts = append(parts, "updated_since="+q.UpdatedSince.Format(time.RFC3339))
	}
	return strings.Join(parts, " ")
}

func newJobs(c *config.Config, rdb redis.UniversalClient, log *zap.Logger) *worker.Jobs {
	wc := workerConfig(c)
	enq := worker.NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), wc.EnqueueConfig(), log)
	return worker.NewJobs(rdb, enq, worker.JobsConfig{Prefix: wc.Prefix}, log)
}

func newResyncCmd() *cobra.Command {
	var (
		sel      selection
		noWait   bool
		interval time.Duration
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "resync [FILE|-]",
		Short: "Re-sync many subscriptions through the bulk queue, with live progress",
		Long: `Enqueues a bulk re-sync job: the ids in FILE (one per line; blank lines and # comments
are ignored; - reads stdin), or the Zuora subscriptions selected by --status and/or
--updated-since. The ids go to the low-priority bulk queue through the same dedup as
callouts; running workers ('zsync work') sync them. Shows progress until every id has an
outcome (or only enqueues, with --no-wait), then a summary. Exits non-zero if any failed.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sel.parse(args); err != nil {
				return err
			}
			p, err := start(cmd, config.Need{Upstream: sel.file == ""})
			if err != nil {
				return err
			}
			defer p.close()
			c, log, rdb := p.cfg, p.log, p.rdb
			src, desc, closeSrc, err := sel.source(cmd.InOrStdin(), func() (worker.SubscriptionQuerier, error) {
				return newZuoraClient(c, rdb)
			})
			if err != nil {
				return err
			}
			defer closeSrc()

			// --timeout bounds the waiting, not the enqueueing: the ids of a
			// file or stdin exist only in this process, so they are all
			// enqueued before it exits (an interrupt stops both).
			ctx := cmd.Context()
			waitCtx := ctx
			if timeout > 0 {
				var cancel context.CancelFunc
				waitCtx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			// The terminal shows the job; its info logs would only repeat it.
			jlog := log
			if jlog.Core().Enabled(zap.InfoLevel) {
				jlog = jlog.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
			}
			jobs := newJobs(c, rdb, jlog)
			job, err := jobs.Create(ctx, desc)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "resync job %s (%s)\n", job.ID, desc)
			runErr := make(chan error, 1)
			go func() {
				_, err := jobs.Run(ctx, job.ID, src)
				runErr <- err
			}()
			progress, err := follow(waitCtx, out, jobs, job.ID, runErr, noWait, interval)
			if err != nil {
				return err
			}
			return summarize(out, progress, noWait)
		},
	}
	addSelectionFlags(cmd, &sel)
	f := cmd.Flags()
	f.BoolVar(&noWait, "no-wait", false, "return once every id is enqueued")
	f.DurationVar(&interval, "interval", 2*time.Second, "how often to print progress when stdout is not a terminal")
	f.DurationVar(&timeout, "timeout", 0, "give up waiting after this long (0: wait until done)")
	return cmd
}

// follow shows progress until the job is finished (or, with noWait, every id
// is enqueued): a bar on a terminal, a line per interval otherwise.
func follow(ctx context.Context, out io.Writer, jobs *worker.Jobs, id string, runErr <-chan error, noWait bool, interval time.Duration) (worker.JobProgress, error) {
	var show func(worker.JobProgress)
	poll := 250 * time.Millisecond
	if f, ok := out.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		bar := newBar(out)
		defer func() { _ = bar.Finish(); fmt.Fprintln(out) }()
		show = func(p worker.JobProgress) {
			total := p.Enqueued + p.Coalesced
			if p.State == worker.JobRunning {
				total++ // more to come: the bar must not finish early
			}
			bar.ChangeMax64(max(total, 1))
			bar.Describe(fmt.Sprintf("%-8s read %d, pending %d, failed %d", p.State, p.Read, p.Pending, p.Done.Failed))
			_ = bar.Set64(p.Done.Total())
		}
	} else {
		var last time.Time
		var lastLine string
		poll = min(interval, poll)
		show = func(p worker.JobProgress) {
			line := progressLine(p)
			if line != lastLine && (time.Since(last) >= interval || p.Finished()) {
				fmt.Fprintln(out, line)
				last, lastLine = time.Now(), line
			}
		}
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	enqueued := false
	for {
		select {
		case err := <-runErr:
			enqueued = true
			if err != nil && ctx.Err() != nil {
				return worker.JobProgress{}, fmt.Errorf("resync job %s interrupted while enqueueing: %w", id, err)
			}
			// A failed enqueue is in the job's state and error: shown below.
		case <-tick.C:
		case <-ctx.Done():
			if !enqueued {
				// Interrupted: Run ends promptly and marks the job failed.
				// Timed out: Run goes on until every id is enqueued.
				<-runErr
			}
			return worker.JobProgress{}, fmt.Errorf("stopped waiting for resync job %s (it goes on; GET /v1/resyncs/%s): %w",
				id, id, context.Cause(ctx))
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		p, err := jobs.Progress(rctx, id)
		cancel()
		if err != nil {
			return p, err
		}
		show(p)
		if p.Finished() || (noWait && enqueued) {
			return p, nil
		}
	}
}

func newBar(out io.Writer) *progressbar.ProgressBar {
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("syncs"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
	)
}

func progressLine(p worker.JobProgress) string {
	d := p.Done
	return fmt.Sprintf("%s: %s read %d enqueued %d coalesced %d invalid %d | done %d/%d (created %d updated %d unchanged %d skipped %d not_found %d failed %d)",
		p.ID, p.State, p.Read, p.Enqueued, p.Coalesced, p.Invalid, d.Total(), p.Enqueued+p.Coalesced,
		d.Created, d.Updated, d.Unchanged, d.Skipped, d.NotFound, d.Failed)
}

// summarize prints the final counts, the failures and the invalid ids, and
// returns an error (non-zero exit) when any id failed or the job did.
func summarize(out io.Writer, p worker.JobProgress, noWait bool) error {
	d := p.Done
	fmt.Fprintf(out, "\nresync job %s: %s\n", p.ID, p.State)
	fmt.Fprintf(out, "  read %d, enqueued %d, coalesced %d, invalid %d\n", p.Read, p.Enqueued, p.Coalesced, p.Invalid)
	fmt.Fprintf(out, "  created %d, updated %d, unchanged %d, skipped %d, not_found %d, failed %d\n",
		d.Created, d.Updated, d.Unchanged, d.Skipped, d.NotFound, d.Failed)
	if !p.StartedAt.IsZero() && p.FinishedAt != nil {
		fmt.Fprintf(out, "  took %s\n", p.FinishedAt.Sub(p.StartedAt).Round(time.Millisecond))
	}
	list := func(what string, total int64, lines []string) {
		for i, l := range lines {
			if i == maxSummaryLines {
				fmt.Fprintf(out, "  … and %d more %s (GET /v1/resyncs/%s lists the first %d)\n", total-int64(i), what, p.ID, len(lines))
				return
			}
			fmt.Fprintln(out, "  "+l)
		}
		if total > int64(len(lines)) {
			fmt.Fprintf(out, "  … and %d more %s not kept\n", total-int64(len(lines)), what)
		}
	}
	var invalid, failed, notFound []string
	for _, id := range p.InvalidIDs {
		invalid = append(invalid, fmt.Sprintf("invalid id %q", id))
	}
	for _, f := range p.Failures {
		l := fmt.Sprintf("%s %s: %s", f.Outcome, f.ID, f.Error)
		if f.Outcome == syncer.Failed {
			failed = append(failed, l)
		} else {
			notFound = append(notFound, l)
		}
	}
	list("invalid ids", p.Invalid, invalid)
	list("failures", d.Failed, failed)
	list("not found", d.NotFound, notFound)
	if noWait && p.State == worker.JobEnqueued {
		fmt.Fprintf(out, "  syncing in the background: GET /v1/resyncs/%s\n", p.ID)
	}
	switch {
	case p.State == worker.JobFailed:
		return fmt.Errorf("resync job %s failed: %s", p.ID, p.Error)
	case d.Failed > 0:
		return fmt.Errorf("resync job %s: %d subscriptions failed", p.ID, d.Failed)
	}
	return nil
}

// maxSummaryLines caps each list in the summary.
const maxSummaryLines = 20

// resyncService serves the API's resync requests: it turns a selection into
// an id source and hands it to the worker's job pool, which runs the job in
// the background of the serve process.
type resyncService struct {
	pool  *worker.JobPool
	zuora worker.SubscriptionQuerier // nil: Zuora selections are unsupported
}

// newResyncService builds the service for serve; Zuora selections need the
// upstream configuration. Its jobs end with ctx, or stop.
func newResyncService(ctx context.Context, c *config.Config, rdb redis.UniversalClient, log *zap.Logger) *resyncService {
	s := &resyncService{pool: worker.NewJobPool(ctx, newJobs(c, rdb, log), worker.DefaultMaxJobs, log)}
	if c.Validate(config.Need{Upstream: true}) == nil {
		if zc, err := newZuoraClient(c, rdb); err == nil {
			s.zuora = zc
		}
	}
	return s
}

func (s *resyncService) StartResync(ctx context.Context, sel api.ResyncSelection) (worker.JobProgress, error) {
	var src worker.IDSource
	var desc string
	if len(sel.IDs) > 0 {
		src, desc = worker.ListSource(sel.IDs), fmt.Sprintf("api: %d ids", len(sel.IDs))
	} else {
		if s.zuora == nil {
			return worker.JobProgress{}, fmt.Errorf("zuora is not configured: %w", api.ErrResyncUnsupported)
		}
		q := zuora.SubscriptionQuery{Status: sel.Status, UpdatedSince: sel.UpdatedSince}
		src, desc = worker.ZuoraSource(s.zuora, q), "api: "+describeQuery(q)
	}
	p, err := s.pool.Start(ctx, src, desc)
	if errors.Is(err, worker.ErrJobPoolBusy) {
		return p, api.ErrResyncBusy
	}
	return p, err
}

func (s *resyncService) ResyncProgress(ctx context.Context, id string) (worker.JobProgress, error) {
	return s.pool.Progress(ctx, id)
}

// stop ends the running jobs and waits for them (worker.JobPool.Stop).
func (s *resyncService) stop() { s.pool.Stop() }

var _ api.Resyncs = (*resyncService)(nil)
