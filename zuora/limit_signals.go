package zuora

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/upstream"
)

// What the tenant limiter does with what Zuora's responses say about its
// limits (upstream.ParseLimits): pauses, the slow-down, the concurrency share.

// LimitObserver is told what the limiter does with what Zuora said.
type LimitObserver interface {
	// Paused: this process paused every process for d (reason: the
	// upstream.WaitSource, or "ratelimit_remaining_zero").
	Paused(reason string, d time.Duration)
	// Slowed: this process set the tenant-wide spacing between requests.
	Slowed(interval time.Duration)
	// Capped: the tenant-wide concurrency cap is now n (Concurrency when
	// no longer shrunk).
	Capped(n int)
	// RateRemaining: a response's RateLimit-Limit and -Remaining.
	RateRemaining(limit, remaining int)
}

// PauseRemainingZero is the pause reason of a response that spent the
// budget: the next request would be a 429.
const PauseRemainingZero = "ratelimit_remaining_zero"

// slowScript sets the spacing (ARGV[1] ms) until the reset (ARGV[2] ms),
// and, unless a request is already spaced, makes the next one wait one
// spacing: the slow-down starts with the response that asked for it. It
// says so on the signals channel (ARGV[3], limit_quiet.go).
var slowScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], 'slow')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local nxt = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if nxt < now then
  redis.call('SET', KEYS[2], now + tonumber(ARGV[1]), 'PX', math.ceil(tonumber(ARGV[1])) + 1)
end
return 1
`)

// capScript sets the concurrency cap from a response's
// Concurrency-Limit-Remaining (ARGV[1]). When Zuora counted, the tenant's
// other integrations held limit − remaining − zsync's in flight; zsync's in
// flight then were at least the answered request and the leases taken
// before it (seq below ARGV[5]) that are still held, so the others held at
// most that much less, and zsync may hold remaining + those + 1 − the
// reserve (ARGV[2]): never more than leaves the others their reserve. At or
// above the configured share (ARGV[3]) the cap is lifted. Zuora has several
// concurrency pools (Concurrency-Limit-Type, ARGV[6]): a response from one
// pool never raises or lifts a cap another pool set. Returns the cap; a
// cap set is said on the signals channel (ARGV[7], limit_quiet.go).
var capScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local before = 0
local seq = tonumber(ARGV[5])
if seq > 0 then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local s = tonumber(string.sub(m, 1, 16))
    if s and s < seq then before = before + 1 end
  end
end
local cap = tonumber(ARGV[1]) + before + 1 - tonumber(ARGV[2])
if cap < 1 then cap = 1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if cur > 0 and cap >= cur and (redis.call('GET', KEYS[3]) or '') ~= ARGV[6] then
  return cur
end
if cap >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[2], KEYS[3])
  return tonumber(ARGV[3])
end
redis.call('SET', KEYS[2], cap, 'PX', ARGV[4])
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[4])
redis.call('PUBLISH', ARGV[7], 'cap')
return cap
`)

// Observe acts on what a response said about Zuora's limits (upstream.Client
// calls it through AcquireObserved): it pauses every process for a 429's
// wait or until the reset of a spent budget, spaces requests out while the
// budget runs low, and shrinks zsync's concurrency while the tenant's free
// slots fall below the reserve. Responses with nothing to act on cost no
// Redis call. Without the request's lease (as here), zsync's own requests
// in flight are taken as none but the answered one, which can only shrink
// the cap more.
func (l *TenantLimiter) Observe(ctx context.Context, status int, lim upstream.Limits) error {
	return l.observe(ctx, 0, status, lim)
}

func (l *TenantLimiter) observe(ctx context.Context, seq int64, status int, lim upstream.Limits) error {
	var errs []error
	if lim.Wait > 0 {
		errs = append(errs, l.pauseFor(ctx, lim.Wait, string(lim.Source)))
	}
	if lim.HasRate {
		if l.cfg.Observer != nil && lim.RateLimit > 0 {
			l.cfg.Observer.RateRemaining(lim.RateLimit, lim.RateRemaining)
		}
		switch {
		case lim.Wait > 0:
		case lim.RateRemaining == 0 && lim.RateReset > 0:
			errs = append(errs, l.pauseFor(ctx, lim.RateReset, PauseRemainingZero))
		case l.cfg.SlowBelow > 0 && lim.RateLimit > 0 && lim.RateReset > 0 &&
			float64(lim.RateRemaining) <= l.cfg.SlowBelow*float64(lim.RateLimit):
			errs = append(errs, l.slow(ctx, lim.RateRemaining, min(lim.RateReset, l.cfg.MaxPause)))
		}
	}
	if lim.HasConcurrency && l.cfg.Reserve > 0 {
		errs = append(errs, l.squeeze(ctx, seq, lim))
	}
	return errors.Join(errs...)
}

// slow sets the tenant-wide spacing until reset: half of what is left,
// spread evenly, leaving the other half to the tenant's other integrations.
// Each response while the budget is low sets it afresh, so the spacing
// grows as the budget shrinks.
func (l *TenantLimiter) slow(ctx context.Context, remaining int, reset time.Duration) error {
	share := max(1, remaining/2)
	interval := float64(reset.Milliseconds()) / float64(share)
	err := slowScript.Run(ctx, l.rdb, []string{l.pace, l.paceNext},
		strconv.FormatFloat(interval, 'f', 3, 64), max(reset.Milliseconds(), 1), l.signals).Err()
	l.quiet.changed()
	if err != nil {
		return l.redisError(ctx, err)
	}
	spacing := time.Duration(interval * float64(time.Millisecond))
	if now := time.Now(); l.slowing.Swap(now.Add(reset).UnixMilli()) < now.UnixMilli() {
		l.cfg.Log.Info("zuora: budget running low; every process slows down", zap.Int("remaining", remaining),
			zap.Duration("spacing", spacing), zap.Duration("until_reset", reset))
	}
	if l.cfg.Observer != nil {
		l.cfg.Observer.Slowed(spacing)
	}
	return nil
}

// squeeze shrinks the concurrency cap while the tenant's free slots, with
// zsync's own, leave less than the reserve, and lifts it again while this
// process's cap may still bind. It asks Redis only then: the estimate uses
// the in-flight count this process saw when it last took a slot.
func (l *TenantLimiter) squeeze(ctx context.Context, seq int64, lim upstream.Limits) error {
	reserve := int(math.Ceil(l.cfg.Reserve * float64(lim.ConcurrencyLimit)))
	nowMS := time.Now().UnixMilli()
	estimate := lim.ConcurrencyRemaining + int(l.inFlight.Load()) - reserve
	if estimate >= l.cfg.Concurrency && l.squeezed.Load() < nowMS {
		return nil
	}
	hold := l.cfg.CapHold
	n, err := capScript.Run(ctx, l.rdb, []string{l.sem, l.cap, l.cap + ":type"},
		lim.ConcurrencyRemaining, reserve, l.cfg.Concurrency, hold.Milliseconds(), seq, lim.ConcurrencyType, l.signals).Int()
	l.quiet.changed()
	if err != nil {
		return l.redisError(ctx, err)
	}
	if n < l.cfg.Concurrency {
		if l.squeezed.Swap(nowMS+hold.Milliseconds()) < nowMS {
			l.cfg.Log.Info("zuora: other integrations need the tenant's slots; concurrency cap shrunk",
				zap.Int("cap", n), zap.Int("tenant_limit", lim.ConcurrencyLimit), zap.Int("tenant_remaining", lim.ConcurrencyRemaining))
		}
	} else if l.squeezed.Swap(0) != 0 {
		l.cfg.Log.Info("zuora: concurrency cap lifted", zap.Int("cap", n))
	}
	if l.cfg.Observer != nil {
		l.cfg.Observer.Capped(n)
	}
	return nil
}
