package worker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/upstream"
)

// lockGuard is the syncer.WriteGuard of one sync: before each Limio write
// it confirms, on Redis, that the subscription's lock is still this run's
// (a lock can vanish without the keeper noticing for up to ttl/3: Redis
// lost its data, or a failover to a replica that never saw it), and it
// remembers a write whose outcome is unknown, so the lock can be held
// until that write could no longer land (handler.settleLock).
type lockGuard struct {
	l *subLock

	mu        sync.Mutex
	uncertain bool // a write may still land
}

func (g *lockGuard) BeforeWrite(ctx context.Context) error {
	return g.l.confirm(ctx)
}

func (g *lockGuard) AfterWrite(_ context.Context, err error) {
	if uncertainWrite(err) {
		g.mu.Lock()
		g.uncertain = true
		g.mu.Unlock()
	}
}

func (g *lockGuard) uncertainWrite() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.uncertain
}

// uncertainWrite reports whether a write that ended with err may have been
// applied, or may still be: no answer came (a timeout, a connection lost
// after the request was sent, the caller giving up), or a gateway answered
// for a backend that may have received it. A definite answer, or a
// connection that was never made, means nothing landed.
func uncertainWrite(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.StatusCode != 0 {
		return ue.StatusCode == http.StatusBadGateway || ue.StatusCode == http.StatusGatewayTimeout
	}
	return true
}

// holdScript keeps a lock that is still ours for ARGV[2] ms more, and no
// less than it already has.
var holdScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`)

// hold keeps the lock for d instead of releasing it: the next sync of the
// subscription starts after a write that may still land could have landed.
func (l *subLock) hold(ctx context.Context, d time.Duration) (bool, error) {
	n, err := holdScript.Run(ctx, l.rdb, []string{l.key}, l.token, d.Milliseconds()).Int64()
	return n == 1, err
}

// runs holds the cancel functions of the syncs running in this process, so
// that all of them can be stopped at once (Redis lost its data).
type runs struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]context.CancelCauseFunc
}

func (r *runs) add(cancel context.CancelCauseFunc) (remove func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[uint64]context.CancelCauseFunc{}
	}
	id := r.next
	r.next++
	r.m[id] = cancel
	return func() {
		r.mu.Lock()
		delete(r.m, id)
		r.mu.Unlock()
	}
}

func (r *runs) cancelAll(cause error) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cancel := range r.m {
		cancel(cause)
	}
	return len(r.m)
}
