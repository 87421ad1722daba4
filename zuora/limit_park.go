package zuora

import (
	"context"
	"time"
)

// Parking: a request that finishes while no request of this process waits
// for a slot keeps its lease in the process for ParkFor instead of
// returning it to Redis at once, as another request of this process very
// often asks a moment later (a sync's Zuora calls follow one another). That
// request takes the parked lease exactly as a handed-over one: as it is
// while quiet (limit_quiet.go), else through acquireScript's ARGV[4] (the
// lease is returned and a new one taken in one script, every tenant-wide
// check run as for any request), which saves the release's round trip.
// Leases nobody took go back when ParkFor is over, in one ZREM for all
// that are due.
//
// Fairness across processes: a parked slot is unusable by other processes
// for at most ParkFor, and a lease parks only while its chain is younger
// than HandOffFor, so a slot still goes back to Redis within HandOffFor +
// ParkFor of its taking from Redis (plus its last request's time).

// defaultParkFor: a sync's next Zuora call follows its previous one within
// well under a millisecond of in-process work, so 5ms catches it (and the
// next sync's first call, on a busy worker), while another process waiting
// for the slot (polling every 5–25ms when the limit is full) loses at most
// 5ms, a tenth of a typical Zuora call.
const defaultParkFor = 5 * time.Millisecond

// maxParkFor bounds ParkFor: longer, a parked slot would stand idle for
// longer than a chain of hand-offs may keep it from other processes.
const maxParkFor = time.Second

// park is handoff's part for parked leases; handoff.mu guards it.
type park struct {
	parked []parkedLease // by park time: the timer returns the oldest, requests take the newest
	timer  *time.Timer   // runs returnParked; armed for parked[0] while any is parked
	closed bool          // Close: no more parking
	taken  int64         // parked leases taken by a request (tests)
	ended  int64         // parked leases whose time ran out (tests)
}

type parkedLease struct {
	heldLease
	until time.Time
}

// parkLocked keeps ls for d; false after Close.
func (h *handoff) parkLocked(ls heldLease, d time.Duration) bool {
	if h.closed || h.timer == nil {
		return false
	}
	h.parked = append(h.parked, parkedLease{heldLease: ls, until: time.Now().Add(d)})
	if len(h.parked) == 1 {
		h.timer.Reset(d)
	}
	return true
}

// unpark takes the most recently parked lease; zero when none is.
func (h *handoff) unpark() heldLease {
	h.mu.Lock()
	defer h.mu.Unlock()
	ls, _ := h.unparkLocked()
	return ls
}

// unparkLocked takes the newest lease: the oldest are due first, so
// the timer stays armed for them as it is.
func (h *handoff) unparkLocked() (heldLease, bool) {
	n := len(h.parked)
	if n == 0 {
		return heldLease{}, false
	}
	ls := h.parked[n-1].heldLease
	h.parked[n-1] = parkedLease{}
	h.parked = h.parked[:n-1]
	h.taken++
	return ls, true
}

// due takes the parked leases whose time is over at now (every one when
// all) and arms the timer for the rest.
func (h *handoff) due(now time.Time, all bool) []any {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.parked)
	if !all {
		n = 0
		for n < len(h.parked) && !h.parked[n].until.After(now) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	h.ended += int64(n)
	members := make([]any, n)
	for i := range n {
		members[i] = h.parked[i].member
		h.parked[i] = parkedLease{}
	}
	if n == len(h.parked) {
		h.parked = h.parked[:0] // keep the array
		return members
	}
	h.parked = h.parked[n:]
	h.timer.Reset(h.parked[0].until.Sub(now))
	return members
}

// returnParked returns the leases whose park time is over to Redis (the
// timer's function).
func (l *TenantLimiter) returnParked() { l.zrem(l.handoff.due(time.Now(), false)) }

// Close returns the parked leases to Redis at once and parks no more:
// a process exiting with leases parked would keep their slots from every
// process until the leases expire. It also ends the subscription to the
// signals channel. The limiter still works after Close, every take through
// the acquire script.
func (l *TenantLimiter) Close() error {
	l.stopQuiet()
	l.handoff.mu.Lock()
	l.handoff.closed = true
	if l.handoff.timer != nil {
		l.handoff.timer.Stop()
	}
	l.handoff.mu.Unlock()
	return l.zrem(l.handoff.due(time.Now(), true))
}

// zrem returns leases this process held to Redis in one round trip; on
// failure they expire.
func (l *TenantLimiter) zrem(members []any) error {
	if len(members) == 0 {
		return nil
	}
	l.held.Add(-int64(len(members)))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.rdb.ZRem(ctx, l.sem, members...).Err(); err != nil {
		return l.redisError(ctx, err)
	}
	return nil
}
