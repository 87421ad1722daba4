package upstream

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ConcurrencyWait is how long callers wait after a 429 that came with
// neither Retry-After nor a spent rate budget: the concurrency limit, which
// frees as soon as requests in flight finish.
const ConcurrencyWait = time.Second

// WaitSource says where Limits.Wait came from.
type WaitSource string

const (
	WaitNone           WaitSource = ""
	WaitRetryAfter     WaitSource = "retry_after"     // the Retry-After header (429 or 503)
	WaitRateLimitReset WaitSource = "ratelimit_reset" // a 429 without Retry-After: RateLimit-Reset
	WaitConcurrency    WaitSource = "concurrency"     // a 429 without either, while the rate budget is not spent
)

// Limits is what a response says about the API's limits. Zuora sends the
// IETF draft's RateLimit-Limit / -Remaining / -Reset (for the window closest
// to exhaustion) and Concurrency-Limit-Type / -Limit / -Remaining; its rate
// limit guide shows a 429 with no Retry-After, its error guide one with it.
type Limits struct {
	HasRate       bool          // RateLimit-Remaining was sent
	RateLimit     int           // the quota of the window closest to exhaustion; 0 unknown
	RateWindow    time.Duration // that window (from its ";w=" policy); 0 unknown
	RateRemaining int           // requests left in that window
	RateReset     time.Duration // until that window's quota resets; 0 unknown

	HasConcurrency       bool // Concurrency-Limit-Limit and -Remaining were sent
	ConcurrencyType      string
	ConcurrencyLimit     int
	ConcurrencyRemaining int

	// Wait is how long the API asked every caller to wait (0: it didn't),
	// and Source why: Retry-After when sent (429 or 503); for a 429 without
	// it, RateLimit-Reset when the budget is spent, else ConcurrencyWait.
	Wait   time.Duration
	Source WaitSource
}

// ParseLimits reads the limit headers of a response with this status.
func ParseLimits(status int, h http.Header, now time.Time) Limits {
	var l Limits
	if v := strings.TrimSpace(h.Get("RateLimit-Remaining")); v != "" {
		if n, ok := parseCount(v); ok {
			l.HasRate, l.RateRemaining = true, n
		}
	}
	l.RateLimit, l.RateWindow = parseRateLimitLimit(h.Get("RateLimit-Limit"))
	l.RateReset = parseSeconds(h.Get("RateLimit-Reset"))
	cl, okL := parseCount(strings.TrimSpace(h.Get("Concurrency-Limit-Limit")))
	cr, okR := parseCount(strings.TrimSpace(h.Get("Concurrency-Limit-Remaining")))
	if okL && okR && cl > 0 {
		l.HasConcurrency, l.ConcurrencyLimit, l.ConcurrencyRemaining = true, cl, cr
		l.ConcurrencyType = strings.TrimSpace(h.Get("Concurrency-Limit-Type"))
	}

	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return l
	}
	if d := parseRetryAfter(strings.TrimSpace(h.Get("Retry-After")), now); d > 0 {
		l.Wait, l.Source = d, WaitRetryAfter
		return l
	}
	if status != http.StatusTooManyRequests {
		return l
	}
	switch {
	case l.RateReset > 0 && (!l.HasRate || l.RateRemaining == 0):
		// The budget is spent (or the answer doesn't say): wait for it.
		l.Wait, l.Source = l.RateReset, WaitRateLimitReset
	default:
		// Budget left, or no rate headers at all: the concurrency limit
		// (Zuora's other 429), which frees within a moment.
		l.Wait, l.Source = ConcurrencyWait, WaitConcurrency
	}
	return l
}

// parseRateLimitLimit reads "2250000, 50000;w=60, 2250000;w=3600, …": the
// first item is the quota of the window closest to exhaustion; its window is
// the w= of the same item, else of the first policy with the same quota.
func parseRateLimitLimit(v string) (int, time.Duration) {
	items := strings.Split(v, ",")
	first, params, _ := strings.Cut(strings.TrimSpace(items[0]), ";")
	limit, ok := parseCount(strings.TrimSpace(first))
	if !ok {
		return 0, 0
	}
	if w := policyWindow(params); w > 0 {
		return limit, w
	}
	for _, it := range items[1:] {
		q, params, _ := strings.Cut(strings.TrimSpace(it), ";")
		if n, ok := parseCount(strings.TrimSpace(q)); ok && n == limit {
			if w := policyWindow(params); w > 0 {
				return limit, w
			}
		}
	}
	return limit, 0
}

// policyWindow reads w=S among ";"-separated parameters.
func policyWindow(params string) time.Duration {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "w") {
			return parseSeconds(v)
		}
	}
	return 0
}

// parseCount reads a non-negative integer; the spec types RateLimit-Remaining
// as a number, so "12.0" is accepted too.
func parseCount(v string) (int, bool) {
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return n, true
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= math.MaxInt32 {
		return int(f), true
	}
	return 0, false
}

// parseSeconds reads delta-seconds (a number, possibly fractional); anything
// else is 0.
func parseSeconds(v string) time.Duration {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e9 {
		return 0
	}
	return time.Duration(math.Ceil(f * float64(time.Second)))
}
