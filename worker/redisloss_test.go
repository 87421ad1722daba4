package worker

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/redistest"
)

// Two processes' watches on one Redis: a first start raises nothing; a
// flush is noticed by both, with the same marker (the catch-up's id); a
// check after that finds nothing new.
func TestLossWatchNoticesAFlushOnce(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := t.Context()
	var got [2][]string
	var ws [2]*LossWatch
	for i := range ws {
		ws[i] = NewLossWatch(rdb, "", 0, zap.NewNop())
		ws[i].OnLoss(func(_ context.Context, marker string) { got[i] = append(got[i], marker) })
		if ws[i].Check(ctx) {
			t.Fatalf("watch %d: a loss on the first start", i)
		}
	}
	if ws[0].Check(ctx) || ws[1].Check(ctx) {
		t.Fatal("a loss with the marker in place")
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if !ws[0].Check(ctx) || !ws[1].Check(ctx) {
		t.Fatal("the flush went unnoticed")
	}
	if ws[0].Check(ctx) || ws[1].Check(ctx) {
		t.Fatal("one flush noticed twice")
	}
	if len(got[0]) != 1 || len(got[1]) != 1 || got[0][0] != got[1][0] {
		t.Fatalf("markers passed on: %v %v; want one each, the same", got[0], got[1])
	}
}
