package zuora

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Quiet hand-offs: a lease handed over or parked (limit_handoff.go,
// limit_park.go) passes to the taker without a Redis round trip while this
// process knows the shared state is clear, that is, the last acquire script
// it ran found no pause, no slow-down spacing and no shrunk cap, and nothing
// has changed since. Every script that sets a pause, a spacing or a cap
// PUBLISHes on the limiter's signals channel, and each limiter listens:
// any message, subscription error or reconnect makes the process unsure,
// and its next take runs acquireScript, which makes it sure again when it
// finds all clear. What the taker skips (the pause, spacing and cap checks)
// would pass; the concurrency check would too, as the lease stays counted
// in the sorted set. Budgets count every request, so with one configured
// every take runs the script.
//
// The window of staleness is the message's delivery: a take in that window
// goes ahead as a request whose script ran just before another process set
// the pause already does. The lease keeps its member, its seq (capScript
// then counts fewer leases before it: a smaller cap, never a larger one)
// and its score, set for Lease when a script took it, at or after the
// chain's start: a lease passes as it is only while the chain is younger
// than Lease/2 (quietTake), so it can't lapse under its next request (which
// HandOffFor, 1s, ends long before that anyway).

// quietPing: how long the subscription may be silent before it is pinged;
// a pong that doesn't come by the next one means the connection is gone
// (messages may be lost), so the process is unsure until it resubscribes.
const quietPing = 30 * time.Second

// quietBackoff bounds the wait between attempts to subscribe.
const quietBackoff = 5 * time.Second

// quiet is what this process knows of the shared state (atomics: the
// hand-off's hot path reads them).
type quiet struct {
	gen   atomic.Int64 // bumped by every message, error and subscription
	clear atomic.Int64 // gen when an acquire script that found all clear was sent; -1 none
	up    atomic.Bool  // subscribed
	seen  atomic.Int64 // messages received (tests)
	lost  atomic.Int64 // subscriptions that failed or ended (tests)

	mu      sync.Mutex
	started bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
}

// quietFits: a take may skip the script for this configuration: no
// budget, hand-offs on.
func quietFits(cfg LimitConfig) bool {
	return cfg.PerMinute == 0 && cfg.PerHour == 0 && cfg.PerDay == 0 && cfg.HandOffFor > 0
}

// quietTake: ls, handed over or parked, passes to its taker as it is.
func (l *TenantLimiter) quietTake(ls heldLease) bool {
	return ls.member != "" && l.quietOK && l.quiet.sure() && time.Since(ls.chain) < l.cfg.Lease/2
}

// sure: the shared state was clear at the last script and nothing changed.
func (q *quiet) sure() bool {
	return q.up.Load() && q.clear.Load() == q.gen.Load()
}

// before is read before an acquire script is sent: the generation it may
// vouch for, or -1 while unsubscribed.
func (q *quiet) before() int64 {
	g := q.gen.Load()
	if !q.up.Load() {
		return -1
	}
	return g
}

// after records what the script sent at generation g found.
func (q *quiet) after(g int64, allClear bool) {
	if !allClear {
		g = -1
	}
	q.clear.Store(g)
}

// changed: this process set a pause, a spacing or a cap; it needn't wait
// for its own message. Called after the script's reply: a script sent
// before then may have run before the change.
func (q *quiet) changed() { q.gen.Add(1) }

// unsure: messages may have been missed.
func (q *quiet) unsure() {
	q.up.Store(false)
	q.gen.Add(1)
}

// startQuiet subscribes to the signals channel, once, unless closed.
func (l *TenantLimiter) startQuiet() {
	q := &l.quiet
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started || q.closed {
		return
	}
	q.started = true
	ctx, cancel := context.WithCancel(context.Background())
	q.stop, q.done = cancel, make(chan struct{})
	go l.listen(ctx)
}

// stopQuiet ends the subscription (Close); the limiter then always runs
// the script.
func (l *TenantLimiter) stopQuiet() {
	q := &l.quiet
	q.mu.Lock()
	q.closed = true
	stop, done := q.stop, q.done
	q.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	q.unsure()
}

func (l *TenantLimiter) listen(ctx context.Context) {
	defer close(l.quiet.done)
	backoff := 100 * time.Millisecond
	for {
		subscribed, err := l.listenOnce(ctx)
		l.quiet.unsure()
		l.quiet.lost.Add(1)
		if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
			return // Close, or the client is closed
		}
		if subscribed {
			backoff = 100 * time.Millisecond
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, quietBackoff)
	}
}

// listenOnce runs one subscription until it fails; it says whether it was
// confirmed.
func (l *TenantLimiter) listenOnce(ctx context.Context) (bool, error) {
	q := &l.quiet
	ps := l.rdb.Subscribe(ctx, l.signals)
	defer ps.Close()
	unhook := context.AfterFunc(ctx, func() { _ = ps.Close() }) // Receive ignores ctx's end
	defer unhook()
	subscribed, pinged := false, false
	for {
		msg, err := ps.ReceiveTimeout(ctx, quietPing)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout() && !pinged:
			pinged = true
			if err := ps.Ping(ctx); err != nil {
				return subscribed, err
			}
			continue
		default:
			return subscribed, err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				return subscribed, errors.New("unsubscribed")
			}
			// Published from now on reaches this process.
			q.gen.Add(1)
			q.up.Store(true)
			subscribed = true
		case *redis.Message:
			q.seen.Add(1)
			q.gen.Add(1)
		case *redis.Pong:
			pinged = false
		}
	}
}
