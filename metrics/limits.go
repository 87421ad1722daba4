package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/zuora"
)

// limitSeries is what the Zuora tenant limiter did with Zuora's limit
// headers (zuora.LimitObserver), as this process saw it.
type limitSeries struct {
	pauses    *prometheus.CounterVec
	pauseTime *prometheus.CounterVec
	slowdowns prometheus.Counter
	spacing   prometheus.Gauge
	capacity  prometheus.Gauge
	remaining prometheus.Gauge
	limit     prometheus.Gauge
}

func newLimitSeries(reg *prometheus.Registry) *limitSeries {
	s := &limitSeries{
		pauses: counterVec("zsync_zuora_pauses_total", []string{"reason"},
			"Tenant-wide pauses this process set (every process waits), by reason: retry_after, ratelimit_reset (a 429 without Retry-After), concurrency (a 429 without either), ratelimit_remaining_zero (a response that spent the budget)."),
		pauseTime: counterVec("zsync_zuora_pause_seconds_total", []string{"reason"},
			"Length of the tenant-wide pauses this process set, by reason."),
		slowdowns: counter("zsync_zuora_slowdowns_total",
			"Responses whose RateLimit-Remaining was at or below zuora.rate_slow_below of RateLimit-Limit, so every process spaces its requests until the reset."),
		spacing: gauge("zsync_zuora_slowdown_spacing_seconds",
			"The last tenant-wide spacing between requests this process set while the budget ran low."),
		capacity: gauge("zsync_zuora_concurrency_cap",
			"zsync's tenant-wide concurrency cap as this process last set it from Concurrency-Limit-Remaining (zuora.concurrency when not shrunk)."),
		remaining: gauge("zsync_zuora_ratelimit_remaining",
			"RateLimit-Remaining of the last Zuora response: requests left in the window closest to exhaustion (tenant-wide, every integration)."),
		limit: gauge("zsync_zuora_ratelimit_limit",
			"RateLimit-Limit of the last Zuora response: the quota of the window closest to exhaustion."),
	}
	reg.MustRegister(s.pauses, s.pauseTime, s.slowdowns, s.spacing, s.capacity, s.remaining, s.limit)
	for _, r := range []string{string(upstream.WaitRetryAfter), string(upstream.WaitRateLimitReset),
		string(upstream.WaitConcurrency), zuora.PauseRemainingZero} {
		s.pauses.WithLabelValues(r)
		s.pauseTime.WithLabelValues(r)
	}
	return s
}

// ZuoraLimits is the LimitConfig.Observer of the Zuora tenant limiter.
func (m *Metrics) ZuoraLimits() zuora.LimitObserver { return m.limits }

func (s *limitSeries) Paused(reason string, d time.Duration) {
	s.pauses.WithLabelValues(reason).Inc()
	s.pauseTime.WithLabelValues(reason).Add(d.Seconds())
}

func (s *limitSeries) Slowed(interval time.Duration) {
	s.slowdowns.Inc()
	s.spacing.Set(interval.Seconds())
}

func (s *limitSeries) Capped(n int) { s.capacity.Set(float64(n)) }

func (s *limitSeries) RateRemaining(limit, remaining int) {
	s.limit.Set(float64(limit))
	s.remaining.Set(float64(remaining))
}
