package zuora

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/field"
	"github.com/zsync/zsync/internal/upstream"
)

// DefaultConcurrency is zsync's default share of the tenant's concurrency
// limit: half of Zuora's default 40, which every integration of the tenant
// (Limio's own among them) shares.
const DefaultConcurrency = 20

// LimitConfig sets the tenant-wide limits every zsync process shares.
type LimitConfig struct {
	Key         string        // Redis key prefix; "zuora" when empty
	Concurrency int           // zsync's requests in flight across all processes; DefaultConcurrency when zero
	PerMinute   int           // zsync's requests per minute; 0 = no limit
	PerHour     int           // … per hour; 0 = no limit
	PerDay      int           // … per day; 0 = no limit
	Lease       time.Duration // a slot frees itself after this (crashed holder); 60s when zero
	MaxWait     time.Duration // Acquire waits at most this, then says Throttled; 5s when zero

	// SlowBelow: when a response's RateLimit-Remaining is at or below this
	// fraction of its RateLimit-Limit, every process spaces its requests so
	// that zsync would spend at most half of what is left before the reset.
	// 0 = off.
	SlowBelow float64
	// Reserve: the fraction of the tenant's concurrency limit (as
	// Concurrency-Limit-Limit reports it) zsync leaves free for the tenant's
	// other integrations. When Concurrency-Limit-Remaining shows fewer free
	// slots, zsync's cap shrinks for CapHold. 0 = off.
	Reserve float64
	CapHold time.Duration // how long a shrunk cap lasts without new evidence; 10s when zero
	// MaxPause bounds a pause a response can impose (a bogus header must not
	// stop zsync for years); 24h, Zuora's longest window, when zero.
	MaxPause time.Duration
	// Observer is told about pauses, slow-downs and caps (metrics); optional.
	Observer LimitObserver
	// Log gets a line when this process pauses every process, starts
	// slowing down, or shrinks or lifts the concurrency cap; optional.
	Log *zap.Logger
	// HandOffFor: how long a slot may pass straight from one request of
	// this process to the next waiting one (limit_handoff.go) before it
	// goes back to Redis for every process; 1s when zero, negative = never.
	HandOffFor time.Duration
	// ParkFor: how long a finished request's slot waits in this process
	// for its next request when none waits yet (limit_park.go), saving the
	// release round trip; other processes can't use it meanwhile. 5ms when
	// zero, at most 1s, negative = never (so is a negative HandOffFor).
	ParkFor time.Duration
}

// TenantLimiter is an upstream.Limiter whose state lives in Redis, so any
// number of worker processes together stay under Zuora's tenant limits
// (reference §7: 40 concurrent requests by default, and per-minute,
// per-hour and per-day budgets), and it acts on what Zuora's responses say
// (Observe): a 429 or a spent budget pauses every process until the reset, a
// low RateLimit-Remaining spaces requests out, and Concurrency-Limit-Remaining
// shrinks zsync's share while other integrations need the tenant's slots.
//
// Everything is decided in one Lua script per request (acquireScript), on
// Redis' clock, but for a slot handed over within this process while
// nothing changed since a script found the shared state clear
// (limit_quiet.go): concurrency is a sorted set of leases scored by their
// expiry, so a process that dies holding a slot loses it after Lease (which
// must exceed the longest request); each budget is a GCRA whose burst and
// steady rate add up to the budget, so no window of its length sees more.
type TenantLimiter struct {
	rdb      redis.UniversalClient
	cfg      LimitConfig
	rates    []gcra
	sem      string
	pause    string
	pace     string
	paceNext string
	cap      string
	seq      string
	rateKeys []string
	squeezed atomic.Int64 // unix ms until which this process's cap may still bind
	inFlight atomic.Int64 // tenant-wide in flight when this process last took a slot
	slowing  atomic.Int64 // unix ms until which this process's last slow-down lasts (logs only)
	signals  string       // the pub/sub channel pauses, slow-downs and caps are announced on (limit_quiet.go)
	handoff  handoff
	held     atomic.Int64 // slots this process holds, hand-offs in passage and parked leases included
	quiet    quiet
	quietOK  bool // quietFits: hand-offs may skip the script
}

type gcra struct {
	interval float64 // ms between requests at the steady rate
	burst    float64 // ms of tolerance: interval × burst
}

// DefaultLimitConfig is every default of the limiter zsync runs with
// (config/ takes its defaults from here). SlowBelow and Reserve are on: zero
// turns them off, so WithDefaults leaves them.
func DefaultLimitConfig() LimitConfig {
	return LimitConfig{Key: "zuora", Concurrency: DefaultConcurrency, Lease: 60 * time.Second, MaxWait: 5 * time.Second,
		SlowBelow: 0.1, Reserve: 0.25, CapHold: 10 * time.Second, MaxPause: 24 * time.Hour, ParkFor: defaultParkFor}
}

// WithDefaults fills zero (or negative: max(v, 0)) values from
// DefaultLimitConfig, but the budgets, SlowBelow and Reserve, where zero
// means off, and ParkFor, where negative means off.
func (c LimitConfig) WithDefaults() LimitConfig {
	d := DefaultLimitConfig()
	c.Key = cmp.Or(c.Key, d.Key)
	c.Concurrency = cmp.Or(max(c.Concurrency, 0), d.Concurrency)
	c.Lease = cmp.Or(max(c.Lease, 0), d.Lease)
	c.MaxWait = cmp.Or(max(c.MaxWait, 0), d.MaxWait)
	c.CapHold = cmp.Or(max(c.CapHold, 0), d.CapHold)
	c.MaxPause = cmp.Or(max(c.MaxPause, 0), d.MaxPause)
	c.ParkFor = cmp.Or(c.ParkFor, d.ParkFor)
	return c
}

// Validate reports every invalid field, by name.
func (c LimitConfig) Validate() error {
	var errs field.Errors
	if c.Concurrency < 0 {
		errs.Add("Concurrency", "must not be negative (zsync's share of the tenant's concurrency limit, 40 by default, shared by every integration)")
	}
	for _, b := range []struct {
		name string
		n    int
	}{{"PerMinute", c.PerMinute}, {"PerHour", c.PerHour}, {"PerDay", c.PerDay}} {
		if b.n < 0 {
			errs.Add(b.name, "must not be negative (0 turns it off)")
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"SlowBelow", c.SlowBelow}, {"Reserve", c.Reserve}} {
		if f.v < 0 || f.v >= 1 {
			errs.Add(f.name, "must be a fraction from 0 (off) to below 1")
		}
	}
	if c.ParkFor > maxParkFor {
		errs.Add("ParkFor", "must be at most 1s (other processes can't use a parked slot); negative turns it off")
	}
	return errs.Err()
}

// NewTenantLimiter returns a limiter; the zero LimitConfig gets the defaults
// (WithDefaults).
func NewTenantLimiter(rdb redis.UniversalClient, cfg LimitConfig) *TenantLimiter {
	cfg = cfg.WithDefaults()
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.HandOffFor == 0 {
		cfg.HandOffFor = defaultHandOffFor
	}
	if cfg.HandOffFor < 0 {
		cfg.ParkFor = -1 // a lease parks only while its chain is young
	}
	// The hash tag keeps every key in one Redis Cluster slot.
	prefix := "{" + cfg.Key + "}:limit:"
	l := &TenantLimiter{rdb: rdb, cfg: cfg, sem: prefix + "sem", pause: prefix + "pause",
		pace: prefix + "pace", paceNext: prefix + "pace:next", cap: prefix + "cap", seq: prefix + "seq",
		signals: prefix + "signals", quietOK: quietFits(cfg)}
	l.quiet.clear.Store(-1)
	if cfg.ParkFor > 0 {
		l.handoff.timer = time.AfterFunc(time.Hour, l.returnParked)
		l.handoff.timer.Stop()
	}
	for _, b := range []struct {
		n      int
		period time.Duration
		name   string
	}{{cfg.PerMinute, time.Minute, "minute"}, {cfg.PerHour, time.Hour, "hour"}, {cfg.PerDay, 24 * time.Hour, "day"}} {
		if b.n > 0 {
			l.rates = append(l.rates, budget(b.n, b.period))
			l.rateKeys = append(l.rateKeys, prefix+"rate:"+b.name)
		}
	}
	return l
}

// budget splits n per period into a steady rate and a burst that add up to
// n, so that no window of that length sees more than n requests (GCRA with
// burst = rate would allow almost twice the budget in the first period).
func budget(n int, period time.Duration) gcra {
	burst := max(1, n/10)
	rate := max(1, n-burst)
	interval := float64(period.Milliseconds()) / float64(rate)
	return gcra{interval: interval, burst: interval * float64(burst)}
}

// acquireScript takes a slot when nothing stops it, and says what does:
// {1, n, seq, clear} taken, n now in flight, the lease's member being
// "<seq, 16 digits>:<ARGV[3]>" (the order leases were taken in, for
// capScript); {0, 0, clear} every slot leased; {-1, ms} paused; {-2, ms} a
// budget is spent for ms; {-3, ms} the slow-down spacing asks to wait ms.
// clear is 1 when no pause, no spacing and no shrunk cap is in force
// (limit_quiet.go). Nothing is
// taken or consumed unless every check passes. ARGV[4], when not empty, is a
// lease handed over by another request of this process (limit_handoff.go):
// it is returned first, whatever the answer, so the checks see the slot free.
//
// KEYS: sem, pause, pace, pace:next, cap, seq, then one per budget.
// ARGV: concurrency, lease ms, member, handed-over member or "", then
// interval and burst ms per budget.
var acquireScript = redis.NewScript(`
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[1], ARGV[4]) end
local pttl = redis.call('PTTL', KEYS[2])
if pttl > 0 then return {-1, pttl} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local spacing = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
if spacing > 0 then
  local nxt = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
  if now < nxt then return {-3, math.ceil(nxt - now)} end
end
local limit = tonumber(ARGV[1])
local cap = tonumber(redis.call('GET', KEYS[5]) or '0') or 0
local clear = 1
if spacing > 0 then clear = 0 end
if cap > 0 and cap < limit then limit = cap; clear = 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then return {0, 0, clear} end
local wait = 0
local tats = {}
for i = 7, #KEYS do
  local interval = tonumber(ARGV[5 + (i - 7) * 2])
  local burst = tonumber(ARGV[6 + (i - 7) * 2])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  local nxt = tat + interval
  if nxt - burst > now then
    wait = math.max(wait, nxt - burst - now)
  end
  tats[i] = nxt
end
if wait > 0 then return {-2, math.ceil(wait)} end
for i = 7, #KEYS do
  redis.call('SET', KEYS[i], tats[i], 'PX', math.ceil(tats[i] - now) + 1)
end
if spacing > 0 then
  redis.call('SET', KEYS[4], now + spacing, 'PX', math.ceil(spacing) + 1)
end
local seq = redis.call('INCR', KEYS[6])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), string.format('%016d', seq) .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return {1, redis.call('ZCARD', KEYS[1]), seq, clear}
`)

// pauseScript extends the pause to ARGV[1] ms unless it already lasts
// longer; the key's value says why (ARGV[2]). It returns 1 when it set it,
// and then says so on the signals channel (ARGV[3], limit_quiet.go).
var pauseScript = redis.NewScript(`
local pttl = redis.call('PTTL', KEYS[1])
if pttl < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
  redis.call('PUBLISH', ARGV[3], 'pause')
  return 1
end
return 0
`)

// Acquire waits, for at most MaxWait, for a slot within every limit. The
// returned release must be called when the request is done.
func (l *TenantLimiter) Acquire(ctx context.Context) (func(), error) {
	release, _, err := l.acquire(ctx)
	return release, err
}

// AcquireObserved is Acquire for upstream.Client: observe, called with the
// response once the slot is released, acts on its limit headers (Observe)
// knowing which lease the request held.
func (l *TenantLimiter) AcquireObserved(ctx context.Context) (func(), func(int, upstream.Limits), error) {
	release, seq, err := l.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return release, func(status int, lim upstream.Limits) {
		// Best effort and detached from the request: what Zuora said is
		// for every process, not for the call that heard it.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.observe(ctx, seq, status, lim)
	}, nil
}

func (l *TenantLimiter) acquire(ctx context.Context) (func(), int64, error) {
	deadline := time.Now().Add(l.cfg.MaxWait)
	if l.quietOK {
		l.startQuiet() // once
	}
	random := newMember()
	var held heldLease // handed over or parked by a finished request; returned by the next try
	if l.cfg.ParkFor > 0 && ctx.Err() == nil {
		held = l.handoff.unpark()
	}
	// While this process holds every slot none is free in Redis: asking
	// would cost a round trip to hear "full", so queue for a hand-off.
	known := held.member == "" && l.cfg.HandOffFor > 0 && l.holdsAll()
	for {
		if err := ctx.Err(); err != nil {
			if held.member != "" {
				l.pass(held) // still this process's: to a waiter, parked, or back to Redis
			}
			return nil, 0, err
		}
		if l.quietTake(held) {
			// Nothing changed since a script found all clear: the lease,
			// still counted in Redis, passes as it is (limit_quiet.go).
			return l.releaser(held), held.seq, nil
		}
		vals, err := []int64{0, 0}, error(nil)
		if !known {
			vals, err = l.try(ctx, random, held.member)
		}
		handed := held.member != ""
		chain := time.Now()
		if handed {
			chain = held.chain
		}
		held = heldLease{}
		taken := err == nil && vals[0] == 1 && len(vals) == 4
		switch {
		case taken && !handed:
			l.held.Add(1)
		case !taken && handed:
			l.held.Add(-1) // the script returned it (or it expires, on an error)
		}
		if err != nil {
			return nil, 0, err
		}
		state := vals[0]
		if taken {
			l.inFlight.Store(vals[1])
			ls := heldLease{member: fmt.Sprintf("%016d:%s", vals[2], random), seq: vals[2], chain: chain}
			if err := ctx.Err(); err != nil {
				l.pass(ls) // the request gave up while its script ran
				return nil, 0, err
			}
			return l.releaser(ls), vals[2], nil
		}
		wait := time.Duration(vals[1]) * time.Millisecond
		if wait <= 0 {
			// Full: slots free as requests finish, so poll briefly.
			wait = 5*time.Millisecond + rand.N(20*time.Millisecond)
		} else {
			wait += rand.N(10 * time.Millisecond) // don't wake every worker at once
		}
		if time.Now().Add(wait).After(deadline) {
			after := max(wait, time.Second)
			return nil, 0, &upstream.Error{API: "zuora", Op: "tenant limit", Kind: upstream.Throttled,
				RetryAfter: after, Message: "tenant " + stateName(state)}
		}
		if state == 0 && l.cfg.HandOffFor > 0 {
			// Full: a request of this process may hand its slot over
			// when it finishes; poll Redis meanwhile, less often the
			// further back in the queue.
			ls, err := l.handoff.wait(ctx, wait, deadline, l.holdsAll, l.pass)
			if err != nil {
				return nil, 0, err
			}
			held = ls // without one: the poll is due, or the wait is over
			known = held.member == "" && l.holdsAll()
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, ctx.Err()
		case <-t.C:
		}
	}
}

func stateName(state int64) string {
	switch state {
	case -1:
		return "paused (Zuora asked to wait)"
	case -2:
		return "request budget spent"
	case -3:
		return "slowed down (Zuora's budget is running low)"
	default:
		return "concurrency limit reached"
	}
}

// try runs the acquire script (see there for what it returns).
func (l *TenantLimiter) try(ctx context.Context, member, held string) ([]int64, error) {
	keys := append([]string{l.sem, l.pause, l.pace, l.paceNext, l.cap, l.seq}, l.rateKeys...)
	args := make([]any, 0, 4+2*len(l.rates))
	args = append(args, l.cfg.Concurrency, l.cfg.Lease.Milliseconds(), member, held)
	for _, r := range l.rates {
		args = append(args, strconv.FormatFloat(r.interval, 'f', 3, 64), strconv.FormatFloat(r.burst, 'f', 3, 64))
	}
	g := l.quiet.before()
	// Detached from the request: a script cut off by a cancelled request
	// may still have run, leaving a lease (and a handed-over one it was to
	// return) counted in Redis until Lease runs out, a tenant slot lost for
	// a minute. Its answer always comes back; acquire passes on what it
	// took for a request that gave up.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), scriptTimeout)
	defer cancel()
	vals, err := acquireScript.Run(sctx, l.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, l.redisError(ctx, err)
	}
	if len(vals) < 2 {
		return nil, l.redisError(ctx, errors.New("unexpected script result"))
	}
	// What it found vouches for the generation it was sent in: a change
	// announced since has bumped the generation.
	l.quiet.after(g, len(vals) >= 3 && vals[0] >= 0 && vals[len(vals)-1] == 1)
	return vals, nil
}

// scriptTimeout bounds an acquire script's round trip.
const scriptTimeout = 2 * time.Second

// releaser frees the slot once, detached from the request's context: a
// cancelled request must still give its slot back.
func (l *TenantLimiter) releaser(ls heldLease) func() {
	var once sync.Once
	return func() { once.Do(func() { l.pass(ls) }) }
}

// pass hands the slot to a waiting request of this process while its
// chain is young, or parks it for the next one when none waits, else
// returns it to Redis. A slot handed over or parked still counts as this
// process's (held) until the taker's script says otherwise.
func (l *TenantLimiter) pass(ls heldLease) {
	if time.Since(ls.chain) < l.cfg.HandOffFor && l.handoff.give(ls, l.cfg.ParkFor) {
		return
	}
	_ = l.zrem([]any{ls.member}) // on failure the lease expires
}

// holdsAll: this process holds every slot the configured concurrency
// allows, so none is free in Redis.
func (l *TenantLimiter) holdsAll() bool { return l.held.Load() >= int64(l.cfg.Concurrency) }

// Pause makes every process sharing this limiter wait d before its next
// request. A longer pause already set is kept.
func (l *TenantLimiter) Pause(ctx context.Context, d time.Duration) error {
	return l.pauseFor(ctx, d, string(upstream.WaitRetryAfter))
}

func (l *TenantLimiter) pauseFor(ctx context.Context, d time.Duration, reason string) error {
	if d <= 0 {
		return nil
	}
	d = min(d, l.cfg.MaxPause)
	ms := max(d.Milliseconds(), 1)
	set, err := pauseScript.Run(ctx, l.rdb, []string{l.pause}, ms, reason, l.signals).Int()
	l.quiet.changed()
	if err != nil {
		return l.redisError(ctx, err)
	}
	if set == 1 {
		l.cfg.Log.Warn("zuora: every process paused", zap.String("reason", reason), zap.Duration("for", d))
		if l.cfg.Observer != nil {
			l.cfg.Observer.Paused(reason, d)
		}
	}
	return nil
}

// LimitState is the limiter's shared state in Redis, for operators and tests.
type LimitState struct {
	InFlight    int           // leased slots
	Cap         int           // the concurrency cap in force (Concurrency unless shrunk)
	Paused      time.Duration // left of the tenant-wide pause; 0 none
	PauseReason string
	Spacing     time.Duration // the slow-down spacing between requests; 0 none
	SlowFor     time.Duration // left of the slow-down
}

// State reads the shared state.
func (l *TenantLimiter) State(ctx context.Context) (LimitState, error) {
	pipe := l.rdb.Pipeline()
	card := pipe.ZCount(ctx, l.sem, strconv.FormatInt(time.Now().UnixMilli(), 10), "+inf")
	capv := pipe.Get(ctx, l.cap)
	ppttl := pipe.PTTL(ctx, l.pause)
	reason := pipe.Get(ctx, l.pause)
	pace := pipe.Get(ctx, l.pace)
	pacettl := pipe.PTTL(ctx, l.pace)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return LimitState{}, l.redisError(ctx, err)
	}
	st := LimitState{InFlight: int(card.Val()), Cap: l.cfg.Concurrency, PauseReason: reason.Val()}
	if n, err := strconv.Atoi(capv.Val()); err == nil && n > 0 && n < st.Cap {
		st.Cap = n
	}
	if d := ppttl.Val(); d > 0 {
		st.Paused = d
	}
	if f, err := strconv.ParseFloat(pace.Val(), 64); err == nil && f > 0 {
		st.Spacing = time.Duration(f * float64(time.Millisecond))
		st.SlowFor = max(pacettl.Val(), 0)
	}
	return st, nil
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

var _ upstream.ObservingLimiter = (*TenantLimiter)(nil)
