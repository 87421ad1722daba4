package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zsync/zsync/syncer"
)

// A nil logger means "don't log", in every constructor of the package (as in
// syncer.New, api.New and NewJobs): a run that logs doesn't panic.
func TestNilLoggerIsDefaulted(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	if _, err := NewSweeper(e.zc, NewEnqueuer(e.rdb, nil, e.cfg.EnqueueConfig(), nil), e.rdb,
		SweepConfig{Schedule: "@every 1h", Prefix: e.cfg.Prefix}, nil); err != nil {
		t.Fatalf("NewSweeper with a nil logger: %v", err)
	}
	const key = "A-S00000901"
	e.fake.failNext(key, syncer.Permanent(errors.New("bad data"))) // logged at Warn
	srv, err := NewServer(e.opt, e.fake, e.store, e.rdb, e.cfg, nil)
	if err != nil {
		t.Fatalf("NewServer with a nil logger: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	e.enqueue(t, key, callout)
	waitFor(t, 10*time.Second, "the failed run recorded", func() bool {
		r, _ := e.store.Latest(t.Context(), key)
		return r != nil && r.Outcome == syncer.Failed
	})
}

// The Redis loss watch too: it logs when the marker is written.
func TestNilLoggerLossWatch(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	w := NewLossWatch(e.rdb, e.cfg.Prefix, time.Millisecond, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	waitFor(t, 10*time.Second, "the marker written", func() bool {
		return e.rdb.Exists(t.Context(), e.cfg.Prefix+"redis:marker").Val() == 1
	})
	cancel()
	<-done
}

// And the catch-up handler.
func TestNilLoggerCatchUp(t *testing.T) {
	t.Parallel()
	if c := NewCatchUp(nil, nil, nil); c == nil || c.log == nil {
		t.Fatal("NewCatchUp with a nil logger has no logger")
	}
}
