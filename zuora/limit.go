package zuora

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/upstream"
)

// LimitConfig sets the tenant-wide limits every zsync process shares.
type LimitConfig struct {
	Key         string        // Redis key prefix; "zuora" when empty
	Concurrency int           // requests in flight across all processes; 40 when zero
	PerMinute   int           // requests per minute; 0 = no rate limit
	Lease       time.Duration // a slot frees itself after this (crashed holder); 60s when zero
	MaxWait     time.Duration // Acquire waits at most this, then says Throttled; 5s when zero
}

// TenantLimiter is an upstream.Limiter whose state lives in Redis, so any
// number of worker processes together stay under Zuora's tenant limits
// (reference §7: 40 concurrent requests by default, and a per-minute rate).
//
// Concurrency is a sorted set of leases scored by their expiry, so a process
// that dies holding a slot loses it after Lease. Lease must exceed the longest
// request (the client's Timeout). The rate uses redis_rate (GCRA). A shared
// pause key lets one 429's Retry-After stop every process.
type TenantLimiter struct {
	rdb   redis.UniversalClient
	rate  *redis_rate.Limiter
	cfg   LimitConfig
	limit redis_rate.Limit
	sem   string
	pause string
	rkey  string
}

// NewTenantLimiter returns a limiter; the zero LimitConfig gets the defaults.
func NewTenantLimiter(rdb redis.UniversalClient, cfg LimitConfig) *TenantLimiter {
	if cfg.Key == "" {
		cfg.Key = "zuora"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 40
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 60 * time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Second
	}
	// The hash tag keeps every key in one Redis Cluster slot.
	prefix := "{" + cfg.Key + "}:limit:"
	l := &TenantLimiter{rdb: rdb, cfg: cfg, sem: prefix + "sem", pause: prefix + "pause", rkey: prefix + "rate"}
	if cfg.PerMinute > 0 {
		l.rate = redis_rate.NewLimiter(rdb)
		l.limit = rateLimit(cfg.PerMinute)
	}
	return l
}

// rateLimit splits PerMinute into a steady rate and a burst that add up to
// it, so that no 60 s window sees more than PerMinute requests (GCRA with
// Burst = Rate would allow almost twice the rate in the first minute).
func rateLimit(perMinute int) redis_rate.Limit {
	burst := max(1, perMinute/10)
	rate := max(1, perMinute-burst)
	return redis_rate.Limit{Rate: rate, Burst: burst, Period: time.Minute}
}

// acquireScript takes a slot if there is no pause and fewer than the limit
// are leased. It returns {1, 0} when taken, {0, 0} when full, {-1, ms} while
// paused. Redis' own clock is used, so processes' clocks don't matter.
var acquireScript = redis.NewScript(`
local pttl = redis.call('PTTL', KEYS[2])
if pttl > 0 then return {-1, pttl} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
  return {1, 0}
end
return {0, 0}
`)

// pauseScript extends the pause to ARGV[1] ms unless it already lasts longer.
var pauseScript = redis.NewScript(`
local pttl = redis.call('PTTL', KEYS[1])
if pttl < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
`)

// Acquire waits, for at most MaxWait, for a slot within both limits. The
// returned release must be called when the request is done.
func (l *TenantLimiter) Acquire(ctx context.Context) (func(), error) {
	deadline := time.Now().Add(l.cfg.MaxWait)
	member := newMember()
	for {
		state, wait, err := l.try(ctx, member)
		if err != nil {
			return nil, err
		}
		if state == 1 {
			release := l.releaser(member)
			if l.rate == nil {
				return release, nil
			}
			res, err := l.rate.Allow(ctx, l.rkey, l.limit)
			if err != nil {
				release()
				return nil, l.redisError(ctx, err)
			}
			if res.Allowed > 0 {
				return release, nil
			}
			release() // don't sit on a slot while waiting for the rate
			wait = res.RetryAfter
		}
		if wait <= 0 {
			// Full: slots free as requests finish, so poll briefly.
			wait = 5*time.Millisecond + rand.N(20*time.Millisecond)
		} else {
			wait += rand.N(10 * time.Millisecond) // don't wake every worker at once
		}
		if time.Now().Add(wait).After(deadline) {
			after := wait
			if after < time.Second {
				after = time.Second
			}
			return nil, &upstream.Error{API: "zuora", Op: "tenant limit", Kind: upstream.Throttled,
				RetryAfter: after, Message: "tenant concurrency or rate limit reached"}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// try runs the acquire script: state 1 taken, 0 full, -1 paused for wait.
func (l *TenantLimiter) try(ctx context.Context, member string) (int64, time.Duration, error) {
	vals, err := acquireScript.Run(ctx, l.rdb, []string{l.sem, l.pause},
		l.cfg.Concurrency, l.cfg.Lease.Milliseconds(), member).Int64Slice()
	if err != nil {
		return 0, 0, l.redisError(ctx, err)
	}
	if len(vals) != 2 {
		return 0, 0, l.redisError(ctx, errors.New("unexpected script result"))
	}
	return vals[0], time.Duration(vals[1]) * time.Millisecond, nil
}

// releaser frees the slot once, detached from the request's context: a
// cancelled request must still give its slot back.
func (l *TenantLimiter) releaser(member string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = l.rdb.ZRem(ctx, l.sem, member).Err() // on failure the lease expires
		})
	}
}

// Pause makes every process sharing this limiter wait d before its next
// request (wired to a 429's Retry-After). A longer pause already set is kept.
func (l *TenantLimiter) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	ms := max(d.Milliseconds(), 1)
	if err := pauseScript.Run(ctx, l.rdb, []string{l.pause}, ms).Err(); err != nil {
		return l.redisError(ctx, err)
	}
	return nil
}

// redisError fails closed: without Redis the limits can't be kept, so the
// request is not sent, and the caller retries later.
func (l *TenantLimiter) redisError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &upstream.Error{API: "zuora", Op: "tenant limit", Kind: upstream.Retryable,
		Message: "limiter unavailable", Err: err}
}

func newMember() string {
	b := make([]byte, 12)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

var _ upstream.Limiter = (*TenantLimiter)(nil)
