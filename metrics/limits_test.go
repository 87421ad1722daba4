package metrics

import (
	"os"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// The limiter's reactions to Zuora's headers show as series: a response
// that spends the budget pauses everyone (reason ratelimit_remaining_zero),
// a 429 without Retry-After pauses until the reset (ratelimit_reset), and
// the last RateLimit-* values are gauges.
func TestZuoraLimitSeries(t *testing.T) {
	t.Parallel()
	m := New()
	h := m.Handler()
	before := scrape(t, h)
	for _, k := range []string{`zsync_zuora_pauses_total{reason="ratelimit_reset"}`,
		`zsync_zuora_pauses_total{reason="ratelimit_remaining_zero"}`, `zsync_zuora_slowdowns_total`} {
		if v, ok := before[k]; !ok || v != 0 {
			t.Fatalf("%s = %v, %v before any response; want a zero series", k, v, ok)
		}
	}
	rdb := redistest.Start(t).Client(t)
	zs := zuoratest.NewServer(t, zuoratest.WithLimits(0, 10), zuoratest.WithoutRetryAfter())
	if err := zs.Seed(os.DirFS("../zuora/testdata")); err != nil {
		t.Fatal(err)
	}
	zs.SetClock(func() time.Time { return time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC) })
	l := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Key: "metrics", SlowBelow: 0.5, MaxWait: time.Millisecond,
		Observer: m.ZuoraLimits()})
	zc, err := zuora.New(zs.Config(), zuora.WithLimiter(l))
	if err != nil {
		t.Fatal(err)
	}
	zs.SpendBudget(5) // 4 left after ours: at or below half, so slow down
	if _, err := zc.GetSubscription(t.Context(), "A-S00000101"); err != nil {
		t.Fatal(err)
	}
	s := scrape(t, h)
	if s[`zsync_zuora_slowdowns_total`] != 1 || s[`zsync_zuora_slowdown_spacing_seconds`] != 15 ||
		s[`zsync_zuora_ratelimit_remaining`] != 4 || s[`zsync_zuora_ratelimit_limit`] != 10 {
		t.Fatalf("after a low remaining: %v", pick(s, "zsync_zuora_"))
	}
	zs.SpendBudget(5) // spent by others: our next request is a 429 without Retry-After
	// The spacing now holds l back; a limiter on another key (same
	// observer) sends the next request without waiting.
	l2 := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Key: "metrics2", Observer: m.ZuoraLimits()})
	zc2, err := zuora.New(zs.Config(), zuora.WithLimiter(l2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zc2.GetSubscription(t.Context(), "A-S00000101"); err == nil {
		t.Fatal("no 429 over the budget")
	}
	s = scrape(t, h)
	if s[`zsync_zuora_pauses_total{reason="ratelimit_reset"}`] != 1 || s[`zsync_zuora_pause_seconds_total{reason="ratelimit_reset"}`] != 30 ||
		s[`zsync_zuora_ratelimit_remaining`] != 0 {
		t.Fatalf("after a 429: %v", pick(s, "zsync_zuora_"))
	}
}

func pick(s map[string]float64, prefix string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out[k] = v
		}
	}
	return out
}
