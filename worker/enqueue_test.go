package worker

import (
	"testing"

	"github.com/zsync/zsync/internal/redistest"
)

// The epoch scripts: callouts are counted in the epoch they read, the handler
// closes the epoch with its count, and re-runs of older tasks keep theirs.
func TestEpochScripts(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	k := keyspace{DefaultPrefix}
	claim := func() (int64, int64) {
		v, err := claimScript.Run(ctx, rdb, []string{k.epoch("X")}).Int64Slice()
		if err != nil {
			t.Fatal(err)
		}
		return v[0], v[1]
	}
	adv := func(task int64, cas bool) advance {
		a, err := runAdvance(ctx, rdb, k, "X", task, cas)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for i := int64(1); i <= 3; i++ {
		if e, n := claim(); e != 0 || n != i {
			t.Fatalf("claim %d = epoch %d, count %d; want 0, %d", i, e, n, i)
		}
	}
	if a := adv(0, false); a != (advance{epoch: 1, callouts: 3, advanced: true}) {
		t.Errorf("advance(0) = %+v; want epoch 1 with 3 callouts", a)
	}
	if e, n := claim(); e != 1 || n != 1 {
		t.Errorf("claim after advance = %d, %d; want 1, 1", e, n)
	}
	// A retry of task X:0: the epoch stays, its count is remembered.
	if a := adv(0, false); a != (advance{epoch: 1, callouts: 3}) {
		t.Errorf("re-run advance(0) = %+v; want no advance, 3 callouts", a)
	}
	// Dead-task path: only the current epoch's task closes it.
	if a := adv(0, true); a.advanced {
		t.Errorf("cas advance of a stale task advanced: %+v", a)
	}
	if a := adv(1, true); a != (advance{epoch: 2, callouts: 1, advanced: true}) {
		t.Errorf("cas advance(1) = %+v; want epoch 2 with 1 callout", a)
	}
	// An older task whose count was overwritten by a later advance: unknown.
	if a := adv(0, false); a.callouts != -1 || a.advanced {
		t.Errorf("advance(0) two epochs late = %+v; want unknown count", a)
	}
	// A task ahead of the counter (the key was lost): jump past it.
	if a := adv(7, false); a.epoch != 8 || !a.advanced {
		t.Errorf("advance(7) = %+v; want epoch 8", a)
	}
}

func TestTaskIDRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id, key string
		want    int64
	}{
		{"A-S1:0", "A-S1", 0}, {"A-S1:42", "A-S1", 42}, {"a:b:3", "a:b", 3},
		{"A-S1", "A-S1", -1}, {"other:3", "A-S1", -1}, {"A-S1:x", "A-S1", -1},
	} {
		if got := epochOf(tc.id, tc.key); got != tc.want {
			t.Errorf("epochOf(%q, %q) = %d; want %d", tc.id, tc.key, got, tc.want)
		}
	}
	if id := taskID("A-S1", 9); epochOf(id, "A-S1") != 9 {
		t.Errorf("taskID/epochOf don't round-trip: %s", id)
	}
}
