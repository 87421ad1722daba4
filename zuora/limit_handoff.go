package zuora

import (
	"context"
	"sync"
	"time"
)

// Hand-off: when a request of this process finishes while another of this
// process waits for a slot (every slot was leased), the finished request
// passes its lease to the waiter instead of returning it to Redis. While
// this process knows the shared state is clear and no budget is configured
// (limit_quiet.go), the waiter takes the lease as it is, without a round
// trip. Otherwise its next acquire script returns that lease and takes a
// new one in the same call (acquireScript's ARGV[4]): every tenant-wide
// check (pause, slow-down, cap, budgets) runs for the waiter as for any
// request, atomically with the return. Either way no other process can
// slip into the slot in between; what it saves is the release round trip
// and the polling of a full tenant limit (about four acquire scripts per
// request with 64 syncs sharing 40 slots), and the take's round trip too
// when quiet.
//
// Fairness across processes: a slot passes between goroutines of one
// process for at most HandOffFor from when it was taken from Redis, then it
// goes back, where every process's waiters compete for it as before.

// defaultHandOffFor bounds a chain of hand-offs: long enough that under a
// full limit most requests skip the release and the poll (at 50 ms a call,
// about 20 of them), short enough that another process waiting for a slot
// gets one of every slot's turns back within a second.
const defaultHandOffFor = time.Second

// pollSpread caps how much longer than the head of the queue a queued
// waiter waits between polls of Redis: slots of other processes (or ones
// coming back from a chain) are still found, without every waiter polling
// at the head's pace.
const pollSpread = 16

// heldLease is a lease one request passes to the next.
type heldLease struct {
	member string    // the sorted-set member in Redis
	seq    int64     // its seq (capScript's order of leases)
	chain  time.Time // when the slot was taken from Redis (not handed over)
}

// handoff is the queue of this process's requests waiting for a slot, and
// the leases parked for the next request (limit_park.go): never both, as a
// lease is parked only while none waits and a request queues only while
// none is parked.
type handoff struct {
	mu      sync.Mutex
	waiters []chan heldLease // FIFO; each buffered 1
	passed  int64            // leases handed over (tests)
	park
}

// give hands ls to the longest-waiting request, or parks it for park when
// none waits (park > 0); false when it did neither.
func (h *handoff) give(ls heldLease, park time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.waiters) == 0 {
		return park > 0 && h.parkLocked(ls, park)
	}
	w := h.waiters[0]
	h.waiters = h.waiters[1:]
	h.passed++
	w <- ls
	return true
}

// wait queues the caller for a handed-over lease for at most poll times its
// place in the queue (capped by pollSpread and by until); without a lease
// (zero member) the caller should poll Redis again. While allMine says this
// process holds every slot there is nothing to find in Redis, so the poll
// is put off (until still bounds the wait). A lease parked meanwhile is
// taken at once. A lease that arrives for a caller whose ctx ended is passed
// on by giveBack.
func (h *handoff) wait(ctx context.Context, poll time.Duration, until time.Time, allMine func() bool, giveBack func(heldLease)) (heldLease, error) {
	h.mu.Lock()
	if ctx.Err() == nil {
		if ls, ok := h.unparkLocked(); ok { // parked since the caller's try
			h.mu.Unlock()
			return ls, nil
		}
	}
	w := make(chan heldLease, 1)
	place := len(h.waiters)
	h.waiters = append(h.waiters, w)
	h.mu.Unlock()
	d := poll * time.Duration(min(place+1, pollSpread))
	t := time.NewTimer(max(min(d, time.Until(until)), 0))
	defer t.Stop()
wait:
	select {
	case ls := <-w:
		return ls, nil
	case <-t.C:
		if left := time.Until(until); left > 0 && allMine() {
			t.Reset(min(d, left))
			goto wait
		}
	case <-ctx.Done():
	}
	if h.remove(w) {
		return heldLease{}, ctx.Err()
	}
	ls := <-w // given while we stopped waiting
	if err := ctx.Err(); err != nil {
		giveBack(ls)
		return heldLease{}, err
	}
	return ls, nil
}

// remove takes w out of the queue; false when a lease was already given
// to it.
func (h *handoff) remove(w chan heldLease) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.waiters {
		if x == w {
			h.waiters = append(h.waiters[:i], h.waiters[i+1:]...)
			return true
		}
	}
	return false
}

func (h *handoff) stats() (waiting int, passed int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters), h.passed
}
