// Package waittest is how tests wait: for a signal (a condition that becomes
// true, a channel that delivers), polled against a generous deadline. Tests
// never sleep a fixed time to let something happen, never prove that
// something did not happen by sleeping longer, and never assert how long
// something took: on a loaded machine any fixed time is wrong. Timings
// belong to the benchmarks (make bench).
package waittest

import (
	"context"
	"testing"
	"time"
)

// Polling starts fast and backs off to maxPoll, so a condition that holds at
// once costs nothing and a long wait doesn't spin.
const (
	firstPoll = time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// For polls cond until it holds; when within passes first, tb fails at once
// with "timed out after <within> waiting for <what>".
func For(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Until(context.Background(), within, cond) {
		tb.Fatalf("timed out after %v waiting for %s", within, what)
	}
}

// Until polls cond until it holds (true), or ctx ends or within passes
// (false), for callers that report the failure themselves.
func Until(ctx context.Context, within time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	poll := firstPoll
	t := time.NewTimer(poll)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond() // one last look: the deadline may have hidden a late success
		case <-t.C:
		}
		poll = min(2*poll, maxPoll)
		t.Reset(poll)
	}
	return true
}

// Recv waits for a value (or the close) of ch; when within passes first, tb
// fails at once naming what.
func Recv[T any](tb testing.TB, within time.Duration, what string, ch <-chan T) T {
	tb.Helper()
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case v := <-ch:
		return v
	case <-t.C:
		tb.Fatalf("timed out after %v waiting for %s", within, what)
		var zero T
		return zero
	}
}
