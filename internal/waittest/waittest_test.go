package waittest

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	For(t, 10e9, "the third look", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("cond called %d times; want 3 (no call after it held)", calls)
	}
}

func TestForFailsNamingWhatItWaitedFor(t *testing.T) {
	f := &fatalTB{TB: t}
	For(f, 1e6, "the impossible", func() bool { return false })
	if !strings.Contains(f.msg, "waiting for the impossible") {
		t.Fatalf("Fatalf message = %q; want it to name what was awaited", f.msg)
	}
}

func TestUntilStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if Until(ctx, 10e9, func() bool { return false }) {
		t.Fatal("Until = true for a condition that never held")
	}
}

func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if v := Recv(t, 10e9, "a value", ch); v != 7 {
		t.Fatalf("Recv = %d; want 7", v)
	}
	f := &fatalTB{TB: t}
	if v := Recv(f, 1e6, "nothing", make(chan int)); v != 0 || !strings.Contains(f.msg, "waiting for nothing") {
		t.Fatalf("Recv on a silent channel = %d, %q; want 0 and a failure naming it", v, f.msg)
	}
}
