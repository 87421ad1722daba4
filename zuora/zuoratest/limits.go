package zuoratest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Tenant limits, answered the documented way (Zuora's rate-limit guide):
// every API response carries RateLimit-Limit ("<quota>, <n>;w=60, …", the
// quota of the window closest to exhaustion first), RateLimit-Remaining and
// RateLimit-Reset (seconds) for that window, and Concurrency-Limit-Type /
// -Limit / -Remaining; over a budget or the concurrency limit the answer is
// a 429, with Retry-After unless that is switched off (the guide's example
// has none). Budgets are fixed windows of a minute, an hour and a day (UTC),
// counted on the sandbox clock, so tests move time instead of waiting.
// Rejected requests count toward the minute, as Zuora says they do.

// window is one fixed-window budget.
type window struct {
	name   string
	period time.Duration
	quota  int // 0 = unlimited
	start  time.Time
	used   int
}

// limitState lives under Server.mu.
type limitState struct {
	concurrency int
	windows     [3]window // minute, hour, day
	noRetry     bool      // 429s without Retry-After
	others      int       // requests other integrations hold in flight
	inFlight    int       // this sandbox's own requests in flight
	peak        int       // the most of them at once
	throttled   int
}

func newLimitState() limitState {
	return limitState{windows: [3]window{
		{name: "minute", period: time.Minute}, {name: "hour", period: time.Hour}, {name: "day", period: 24 * time.Hour}}}
}

// resetCounts forgets usage, keeping the limits.
func (l *limitState) resetCounts() {
	for i := range l.windows {
		l.windows[i].start, l.windows[i].used = time.Time{}, 0
	}
	l.inFlight, l.peak, l.throttled = 0, 0, 0
}

// roll starts the windows that now lies outside of.
func (l *limitState) roll(now time.Time) {
	for i := range l.windows {
		w := &l.windows[i]
		if start := now.Truncate(w.period); !start.Equal(w.start) {
			w.start, w.used = start, 0
		}
	}
}

// closest is the budgeted window closest to exhaustion: the fewest requests
// left, and of those the one that resets last (the one a client must wait
// for). ok is false without budgets.
func (l *limitState) closest(now time.Time) (w window, left int, reset time.Duration, ok bool) {
	for _, c := range l.windows {
		if c.quota <= 0 {
			continue
		}
		cl := max(0, c.quota-c.used)
		cr := c.start.Add(c.period).Sub(now)
		if !ok || cl < left || (cl == left && cr > reset) {
			w, left, reset, ok = c, cl, cr, true
		}
	}
	return w, left, reset, ok
}

// rateHeaders sets the RateLimit-* headers.
func (l *limitState) rateHeaders(h http.Header, now time.Time) {
	w, left, reset, ok := l.closest(now)
	if !ok {
		return
	}
	parts := []string{strconv.Itoa(w.quota)}
	for _, c := range l.windows {
		if c.quota > 0 {
			parts = append(parts, fmt.Sprintf("%d;w=%d", c.quota, int(c.period/time.Second)))
		}
	}
	h.Set("RateLimit-Limit", strings.Join(parts, ", "))
	h.Set("RateLimit-Remaining", strconv.Itoa(left))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(reset)))
}

func ceilSeconds(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }

// limit enforces the tenant limits on API requests (not /oauth/token, which
// Zuora exempts from the concurrency limit, nor /sandbox admin).
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		now := s.Base.Now()
		h := w.Header()
		s.mu.Lock()
		l := &s.tenantLimit
		l.roll(now)
		if l.concurrency > 0 {
			h.Set("Concurrency-Limit-Type", "Default")
			h.Set("Concurrency-Limit-Limit", strconv.Itoa(l.concurrency))
		}
		var spent *window
		for i := range l.windows {
			if c := &l.windows[i]; c.quota > 0 && c.used >= c.quota && (spent == nil || c.start.Add(c.period).After(spent.start.Add(spent.period))) {
				spent = c
			}
		}
		switch {
		case spent != nil:
			l.windows[0].used++ // unsuccessful requests count toward the minute
			l.throttled++
			l.rateHeaders(h, now)
			if l.concurrency > 0 {
				h.Set("Concurrency-Limit-Remaining", strconv.Itoa(max(0, l.concurrency-l.inFlight-l.others)))
			}
			noRetry := l.noRetry
			s.mu.Unlock()
			if !noRetry {
				h.Set("Retry-After", strconv.Itoa(ceilSeconds(spent.start.Add(spent.period).Sub(now))))
			}
			s.Base.WriteError(w, http.StatusTooManyRequests, "Request rate limit exceeded (per "+spent.name+")")
			return
		case l.concurrency > 0 && l.inFlight+l.others >= l.concurrency:
			l.windows[0].used++
			l.throttled++
			l.rateHeaders(h, now)
			noRetry := l.noRetry
			s.mu.Unlock()
			h.Set("Concurrency-Limit-Remaining", "0")
			if !noRetry {
				h.Set("Retry-After", "1")
			}
			s.Base.WriteError(w, http.StatusTooManyRequests, "Concurrent request limit exceeded")
			return
		}
		for i := range l.windows {
			l.windows[i].used++
		}
		l.inFlight++
		l.peak = max(l.peak, l.inFlight)
		l.rateHeaders(h, now)
		if l.concurrency > 0 {
			h.Set("Concurrency-Limit-Remaining", strconv.Itoa(max(0, l.concurrency-l.inFlight-l.others)))
		}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.tenantLimit.inFlight--
			s.mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}

// WithLimits sets the tenant limits: in-flight requests and requests per
// minute (0 = unlimited).
func WithLimits(concurrency, perMinute int) Option {
	return func(s *Server) { s.tenantLimit.concurrency, s.tenantLimit.windows[0].quota = concurrency, perMinute }
}

// WithBudgets sets the hourly and daily budgets (0 = unlimited); a Zuora
// Developer Sandbox tenant has 25,000 and 50,000.
func WithBudgets(perHour, perDay int) Option {
	return func(s *Server) { s.tenantLimit.windows[1].quota, s.tenantLimit.windows[2].quota = perHour, perDay }
}

// WithoutRetryAfter answers 429s with the RateLimit-* headers only, as the
// rate-limit guide's example does.
func WithoutRetryAfter() Option { return func(s *Server) { s.tenantLimit.noRetry = true } }

// SetLimits changes the concurrency limit and the per-minute budget (0 =
// unlimited).
func (s *Server) SetLimits(concurrency, perMinute int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenantLimit.concurrency, s.tenantLimit.windows[0].quota = concurrency, perMinute
}

// SetBudgets changes the hourly and daily budgets (0 = unlimited).
func (s *Server) SetBudgets(perHour, perDay int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenantLimit.windows[1].quota, s.tenantLimit.windows[2].quota = perHour, perDay
}

// SetRetryAfter switches Retry-After on 429s on (the default) or off.
func (s *Server) SetRetryAfter(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenantLimit.noRetry = !on
}

// SetOthersInFlight makes n requests of the tenant's other integrations hold
// concurrency slots, so tests can show zsync leaving them room.
func (s *Server) SetOthersInFlight(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenantLimit.others = max(0, n)
}

// SpendBudget counts n requests of other integrations in every current
// window, as if they had been made now.
func (s *Server) SpendBudget(n int) {
	now := s.Base.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenantLimit.roll(now)
	for i := range s.tenantLimit.windows {
		s.tenantLimit.windows[i].used += n
	}
}

// Throttled is how many 429s the tenant limits have answered.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenantLimit.throttled
}

// PeakInFlight is the most API requests the sandbox has served at once
// (other integrations' simulated ones not included).
func (s *Server) PeakInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenantLimit.peak
}

// limitsBody is PUT /sandbox/limits: absent numbers are 0 (unlimited),
// an absent retry_after keeps Retry-After on.
type limitsBody struct {
	Concurrency    int   `json:"concurrency"`
	PerMinute      int   `json:"per_minute"`
	PerHour        int   `json:"per_hour"`
	PerDay         int   `json:"per_day"`
	RetryAfter     *bool `json:"retry_after,omitempty"`
	OthersInFlight int   `json:"others_in_flight"`
}

func (b limitsBody) validate() error {
	if b.Concurrency < 0 || b.PerMinute < 0 || b.PerHour < 0 || b.PerDay < 0 || b.OthersInFlight < 0 {
		return fmt.Errorf("limits must be >= 0")
	}
	return nil
}

func (s *Server) applyLimits(b limitsBody) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenantLimit.concurrency = b.Concurrency
	s.tenantLimit.windows[0].quota, s.tenantLimit.windows[1].quota, s.tenantLimit.windows[2].quota = b.PerMinute, b.PerHour, b.PerDay
	s.tenantLimit.noRetry = b.RetryAfter != nil && !*b.RetryAfter
	s.tenantLimit.others = b.OthersInFlight
}
