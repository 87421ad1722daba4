package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/waittest"
)

// A pool runs at most its jobs at once, refuses more while they run, and
// Stop ends them, marked failed.
func TestJobPoolBoundsAndStops(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pool := NewJobPool(t.Context(), e.jobs(nil), 2, e.log)
	read := make(chan struct{}, 2)
	// Each job reads one id, then waits until it is stopped.
	src := func(ctx context.Context, yield func(string) error) error {
		if err := yield("A-S00000901"); err != nil {
			return err
		}
		read <- struct{}{}
		<-ctx.Done()
		return context.Cause(ctx)
	}
	var ids []string
	for range 2 {
		p, err := pool.Start(t.Context(), src, "test")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	for range 2 {
		waittest.Recv(t, 10*time.Second, "a job reading its source", read)
	}
	if _, err := pool.Start(t.Context(), src, "test"); !errors.Is(err, ErrJobPoolBusy) {
		t.Fatalf("third job: %v; want ErrJobPoolBusy", err)
	}
	pool.Stop()
	for _, id := range ids {
		p, err := pool.Progress(t.Context(), id)
		if err != nil || p.State != JobFailed {
			t.Fatalf("job after Stop: %+v, %v; want failed", p, err)
		}
	}
}
