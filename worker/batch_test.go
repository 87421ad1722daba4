package worker

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/waittest"
)

// A batch that may start is sent by the caller that found the slot free, on
// its own goroutine: add returns with its item answered.
func TestBatcherLoneItemSentByItsCaller(t *testing.T) {
	t.Parallel()
	var onCaller, sent []bool
	b := &batcher[int]{maxInFlight: 1, send: func(batch []int) {
		buf := make([]byte, 64<<10)
		stack := string(buf[:runtime.Stack(buf, false)])
		for range batch {
			onCaller = append(onCaller, strings.Contains(stack, "TestBatcherLoneItemSentByItsCaller"))
			sent = append(sent, true)
		}
	}}
	for range 3 {
		b.add(1)
	}
	if len(sent) != 3 || slices.Contains(onCaller, false) {
		t.Fatalf("sent %d of 3 items when add returned, on the caller's goroutine: %v", len(sent), onCaller)
	}
}

// Items that come while a batch is out wait for the slot and go together,
// in a goroutine: their callers' add doesn't wait, and the caller that sent
// the first batch doesn't send theirs.
func TestBatcherQueuesWhileInFlight(t *testing.T) {
	t.Parallel()
	entered, gate := make(chan struct{}), make(chan struct{})
	batches := make(chan []int, 2)
	b := &batcher[int]{maxInFlight: 1, send: func(batch []int) {
		batches <- slices.Clone(batch)
		if batch[0] == 1 {
			close(entered)
			<-gate
		}
	}}
	firstDone := make(chan struct{})
	go func() {
		b.add(1)
		close(firstDone)
	}()
	<-entered
	b.add(2) // the slot is taken: queued, add returns at once
	b.add(3)
	close(gate)
	waittest.Recv(t, 10*time.Second, "the first add's return", firstDone)
	if got := waittest.Recv(t, 10*time.Second, "the first batch", batches); !slices.Equal(got, []int{1}) {
		t.Fatalf("first batch %v; want [1]", got)
	}
	if got := waittest.Recv(t, 10*time.Second, "the second batch", batches); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("second batch %v; want [2 3]", got)
	}
}

// Under concurrent adds every item is sent exactly once, never more than
// maxInFlight batches at a time, and every slot is given back.
func TestBatcherSendsEveryItemOnce(t *testing.T) {
	t.Parallel()
	const n, maxIn = 5000, 2
	var out, peak atomic.Int64
	var mu sync.Mutex
	seen := make([]int, n)
	b := &batcher[int]{maxInFlight: maxIn}
	b.send = func(batch []int) {
		now := out.Add(1)
		for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
		}
		mu.Lock()
		for _, i := range batch {
			seen[i]++
		}
		mu.Unlock()
		runtime.Gosched()
		out.Add(-1)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { b.add(i) })
	}
	wg.Wait()
	// Adds that only queued return before their item is sent: wait for the
	// slots to come back.
	waittest.For(t, 10*time.Second, "the batcher idle", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.inFlight == 0 && len(b.pending) == 0
	})
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("item %d sent %d times", i, c)
		}
	}
	if p := peak.Load(); p > maxIn {
		t.Fatalf("%d batches in flight at once; want at most %d", p, maxIn)
	}
}
