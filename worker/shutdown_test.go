package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/syncer"
)

// A forced shutdown (syncs still running when worker.shutdown_timeout ends)
// records an outcome for every interrupted run before Shutdown returns: the
// process exits right after, and a run that had not recorded yet would leave
// nothing behind. Each is failed, not archived, and says it was interrupted.
func TestForcedShutdownRecordsEveryInterruptedRun(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.ShutdownTimeout = 100 * time.Millisecond })
	keys := []string{"A-S00000701", "A-S00000702", "A-S00000703"}
	started := make(chan string, len(keys))
	cut := make(chan string, len(keys))
	release := make(chan struct{})
	// Each sync blocks until its run is cancelled, then takes as long as
	// the test says to return: a run still unwinding when asynq gives up.
	e.fake.block = func(ctx context.Context, key string, _ int) error {
		started <- key
		<-ctx.Done()
		cut <- key
		<-release
		return ctx.Err()
	}
	srv := e.startServer(t)
	for _, k := range keys {
		e.fake.bump(k)
		e.enqueue(t, k, callout)
	}
	for range keys {
		waittest.Recv(t, 10*time.Second, "a sync started", started)
	}
	stopped := make(chan struct{})
	go func() { srv.Shutdown(); close(stopped) }()
	for range keys {
		waittest.Recv(t, 10*time.Second, "a running sync cancelled by the shutdown", cut)
	}
	close(release)
	waittest.Recv(t, 20*time.Second, "Shutdown to return", stopped)
	// No waiting from here on: Shutdown has returned, the records are there.
	for _, k := range keys {
		r, err := e.store.Latest(t.Context(), k)
		if err != nil || r == nil {
			t.Fatalf("%s: no outcome recorded by the time Shutdown returned (%v)", k, err)
		}
		if r.Outcome != syncer.Failed || r.Archived || !strings.Contains(r.Error, "interrupted") {
			t.Errorf("%s: recorded %s archived=%v error %q; want failed, not archived, interrupted", k, r.Outcome, r.Archived, r.Error)
		}
	}
}
