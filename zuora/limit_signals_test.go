package zuora_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// These tests show each rule of "limits as Zuora signals them" with the
// sandbox answering the documented way and the limiter's state in a real
// Redis shared by two "processes". They assert on what is recorded in Redis
// (LimitState), on request counts and on errors, never on elapsed time.

// limitSandbox is a seeded sandbox whose clock stands still at at, so the
// RateLimit-Reset it answers is known.
func limitSandbox(t *testing.T, at time.Time, opts ...zuoratest.Option) *zuoratest.Server {
	t.Helper()
	srv := contractServer(t, opts...)
	if err := srv.Seed(os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	srv.SetClock(func() time.Time { return at })
	return srv
}

func client(t *testing.T, srv *zuoratest.Server, l *zuora.TenantLimiter) *zuora.Client {
	t.Helper()
	return newClient(t, srv.Config(), zuora.WithLimiter(l))
}

func state(t *testing.T, l *zuora.TenantLimiter) zuora.LimitState {
	t.Helper()
	st, err := l.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// limitRecorder is a LimitObserver that keeps what it was told.
type limitRecorder struct {
	mu     sync.Mutex
	pauses []string
	slowed []time.Duration
	caps   []int
	rates  [][2]int
}

func (r *limitRecorder) Paused(reason string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pauses = append(r.pauses, reason)
}

func (r *limitRecorder) Slowed(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slowed = append(r.slowed, d)
}

func (r *limitRecorder) Capped(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.caps = append(r.caps, n)
}

func (r *limitRecorder) RateRemaining(limit, remaining int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rates = append(r.rates, [2]int{limit, remaining})
}

// A 429 with the ratelimit-* headers and no Retry-After (the rate-limit
// guide's example) pauses every process until RateLimit-Reset.
func TestLimit429WithoutRetryAfterPausesUntilReset(t *testing.T) {
	t.Parallel()
	obs := &limitRecorder{}
	core, logs := observer.New(zap.InfoLevel)
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "reset429", MaxWait: 50 * time.Millisecond, Observer: obs,
		Log: zap.New(core)})
	// 40 s into the hour: the hourly budget resets in 3,560 s.
	srv := limitSandbox(t, time.Date(2026, 1, 1, 10, 0, 40, 0, time.UTC),
		zuoratest.WithBudgets(100, 0), zuoratest.WithoutRetryAfter())
	srv.SpendBudget(100) // other integrations spent the hour
	c := client(t, srv, a)

	_, err := c.GetSubscription(context.Background(), "A-S00000101")
	e := apiError(t, err)
	if e.Kind != upstream.Throttled || e.StatusCode != 429 || e.RetryAfter != 3560*time.Second {
		t.Fatalf("err = %v (retry after %v); want a 429 waiting for the reset", err, e.RetryAfter)
	}
	st := state(t, b)
	if st.PauseReason != string(upstream.WaitRateLimitReset) || st.Paused <= 3500*time.Second || st.Paused > 3560*time.Second {
		t.Fatalf("pause in Redis: %+v; want about 3560s for ratelimit_reset", st)
	}
	// The other process waits too, and is told how long.
	_, err = b.Acquire(context.Background())
	if d := wantThrottled(t, err); d <= 3500*time.Second {
		t.Fatalf("other process told to wait %v", d)
	}
	before := srv.Count("", "/v1/")
	if _, err := client(t, srv, b).GetSubscription(context.Background(), "A-S00000101"); !errors.Is(err, upstream.ErrThrottled) {
		t.Fatalf("during the pause: %v", err)
	}
	if srv.Count("", "/v1/") != before || srv.Throttled() != 1 {
		t.Fatalf("requests reached Zuora during the pause (%d → %d), 429s %d", before, srv.Count("", "/v1/"), srv.Throttled())
	}
	if len(obs.pauses) != 1 || obs.pauses[0] != string(upstream.WaitRateLimitReset) {
		t.Fatalf("observer heard pauses %v", obs.pauses)
	}
	// The process that set the pause says so once, with the reason.
	lines := logs.FilterMessage("zuora: every process paused").All()
	if len(lines) != 1 || lines[0].ContextMap()["reason"] != string(upstream.WaitRateLimitReset) {
		t.Fatalf("pause log lines %v", lines)
	}
}

// With Retry-After, the 429 pauses for it (the error-handling guide's form).
func TestLimit429WithRetryAfterPausesForIt(t *testing.T) {
	t.Parallel()
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "ra429", MaxWait: 50 * time.Millisecond})
	srv := limitSandbox(t, time.Date(2026, 1, 1, 10, 0, 40, 0, time.UTC))
	srv.AddFault(sandbox.Fault{Path: "/v1/subscriptions/", Status: 429, RetryAfterS: 90, Count: 1})
	if _, err := client(t, srv, a).GetSubscription(context.Background(), "A-S00000101"); !errors.Is(err, upstream.ErrThrottled) {
		t.Fatalf("err = %v", err)
	}
	if st := state(t, b); st.PauseReason != string(upstream.WaitRetryAfter) || st.Paused <= 80*time.Second || st.Paused > 90*time.Second {
		t.Fatalf("pause in Redis: %+v; want about 90s for retry_after", st)
	}
}

// A response that spends the budget (RateLimit-Remaining 0) pauses every
// process until the reset, so the next request never earns a 429.
func TestLimitRemainingZeroPausesBeforeThe429(t *testing.T) {
	t.Parallel()
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "zero", MaxWait: 50 * time.Millisecond})
	srv := limitSandbox(t, time.Date(2026, 1, 1, 10, 0, 15, 0, time.UTC), zuoratest.WithLimits(0, 3))
	srv.SpendBudget(2)
	if _, err := client(t, srv, a).GetSubscription(context.Background(), "A-S00000101"); err != nil {
		t.Fatal(err)
	}
	st := state(t, b)
	if st.PauseReason != zuora.PauseRemainingZero || st.Paused <= 40*time.Second || st.Paused > 45*time.Second {
		t.Fatalf("pause in Redis: %+v; want about 45s (the minute's reset)", st)
	}
	before := srv.Count("", "/v1/")
	_, err := client(t, srv, b).GetSubscription(context.Background(), "A-S00000101")
	if !errors.Is(err, upstream.ErrThrottled) || srv.Count("", "/v1/") != before || srv.Throttled() != 0 {
		t.Fatalf("err %v, requests %d → %d, 429s %d; want no request and no 429", err, before, srv.Count("", "/v1/"), srv.Throttled())
	}
}

// When RateLimit-Remaining falls to SlowBelow of the limit, every process
// spaces its requests so that zsync spends at most half of what is left
// before the reset.
func TestLimitLowRemainingSlowsEveryProcess(t *testing.T) {
	t.Parallel()
	obs := &limitRecorder{}
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "slow", SlowBelow: 0.1, MaxWait: 50 * time.Millisecond, Observer: obs})
	srv := limitSandbox(t, time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), zuoratest.WithLimits(0, 100))
	ca := client(t, srv, a)
	ctx := context.Background()
	// Plenty left: no spacing.
	if _, err := ca.GetSubscription(ctx, "A-S00000101"); err != nil {
		t.Fatal(err)
	}
	if st := state(t, a); st.Spacing != 0 {
		t.Fatalf("spacing with 99 of 100 left: %+v", st)
	}
	srv.SpendBudget(89) // others: 10 left after our next request… 9
	if _, err := ca.GetSubscription(ctx, "A-S00000101"); err != nil {
		t.Fatal(err)
	}
	// 9 left, 60 s to the reset: 4 of them (half) over 60 s, one per 15 s.
	st := state(t, b)
	if st.Spacing != 15*time.Second || st.SlowFor <= 50*time.Second || st.SlowFor > 60*time.Second {
		t.Fatalf("slow-down in Redis: %+v; want 15s spacing for about 60s", st)
	}
	before := srv.Count("", "/v1/")
	_, err := client(t, srv, b).GetSubscription(ctx, "A-S00000101")
	e := apiError(t, err)
	if e.Kind != upstream.Throttled || !strings.Contains(e.Message, "slowed down") || e.RetryAfter < 10*time.Second {
		t.Fatalf("err = %v (retry after %v); want throttled by the slow-down", err, e.RetryAfter)
	}
	if srv.Count("", "/v1/") != before {
		t.Fatal("a request went out inside the spacing")
	}
	if len(obs.slowed) != 1 || obs.slowed[0] != 15*time.Second || len(obs.rates) != 2 || obs.rates[1] != [2]int{100, 9} {
		t.Fatalf("observer: slowed %v, rates %v", obs.slowed, obs.rates)
	}
}

// Hourly and daily budgets hold across processes: each lets its burst (a
// tenth) through at once, then asks for the budget's own spacing — far
// longer than a minute's.
func TestLimitHourAndDayBudgetsAcrossProcesses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		cfg     zuora.LimitConfig
		burst   int           // a tenth of the budget
		spacing time.Duration // period / (budget − burst)
	}{
		{"hour", zuora.LimitConfig{Key: "hour", PerMinute: 6000, PerHour: 100}, 10, time.Hour / 90},
		{"day", zuora.LimitConfig{Key: "day", PerMinute: 6000, PerHour: 100000, PerDay: 200}, 20, 24 * time.Hour / 180},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.MaxWait = time.Millisecond
			a, b, _ := twoProcesses(t, tt.cfg)
			allowed, throttled := 0, 0
			var wait time.Duration
			for i := range 40 {
				l := a
				if i%2 == 1 {
					l = b
				}
				release, err := l.Acquire(context.Background())
				if err != nil {
					wait = wantThrottled(t, err)
					throttled++
					continue
				}
				release()
				allowed++
			}
			// The steady rate adds nothing in the milliseconds the loop takes.
			if allowed < tt.burst || allowed > tt.burst+1 || throttled != 40-allowed {
				t.Fatalf("allowed %d, throttled %d; want the burst of %d", allowed, throttled, tt.burst)
			}
			if wait < tt.spacing/2 || wait > tt.spacing+time.Second {
				t.Fatalf("told to wait %v; want about %v (the %s budget's spacing)", wait, tt.spacing, tt.name)
			}
		})
	}
}

// Concurrency-Limit-Remaining below the reserve shrinks zsync's cap in every
// process, so other integrations keep free slots; it is lifted when they
// leave.
func TestLimitConcurrencyLeavesRoomForOthers(t *testing.T) {
	t.Parallel()
	obs := &limitRecorder{}
	core, logs := observer.New(zap.InfoLevel)
	a, b, _ := twoProcesses(t, zuora.LimitConfig{Key: "share", Concurrency: 8, Reserve: 0.2,
		MaxWait: 20 * time.Second, Observer: obs, Log: zap.New(core)})
	srv := limitSandbox(t, time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), zuoratest.WithLimits(10, 0))
	srv.SetOthersInFlight(6) // another integration holds 6 of the tenant's 10
	ca, cb := client(t, srv, a), client(t, srv, b)
	ctx := context.Background()
	if _, err := ca.GetSubscription(ctx, "A-S00000101"); err != nil {
		t.Fatal(err)
	}
	// Remaining 3 with our request in flight: zsync may hold 3 + 1 − 2 (the
	// reserve, a fifth of 10) = 2.
	if st := state(t, b); st.Cap != 2 {
		t.Fatalf("cap in Redis: %+v; want 2", st)
	}
	// Under load from both processes, Zuora never has to refuse anyone.
	srv.AddFault(sandbox.Fault{Path: "/v1/subscriptions/", LatencyMS: 5})
	var wg sync.WaitGroup
	for _, c := range []*zuora.Client{ca, cb} {
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					if _, err := c.GetSubscription(ctx, "A-S00000101"); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if n, peak := srv.Throttled(), srv.PeakInFlight(); n != 0 || peak > 4 {
		t.Fatalf("sandbox answered %d 429s, zsync peaked at %d in flight (the others' 6 leave 4)", n, peak)
	}
	srv.ClearFaults()
	// The other integration is done: the next response lifts the cap.
	srv.SetOthersInFlight(0)
	if _, err := ca.GetSubscription(ctx, "A-S00000101"); err != nil {
		t.Fatal(err)
	}
	if st := state(t, b); st.Cap != 8 {
		t.Fatalf("cap after the others left: %+v; want 8", st)
	}
	if obs.caps[len(obs.caps)-1] != 8 {
		t.Fatalf("observer caps %v", obs.caps)
	}
	if logs.FilterMessageSnippet("concurrency cap shrunk").Len() < 1 || logs.FilterMessage("zuora: concurrency cap lifted").Len() < 1 {
		t.Fatalf("cap log lines %v", logs.All())
	}
}

// A header can't pause zsync for longer than MaxPause.
func TestLimitPauseIsBounded(t *testing.T) {
	t.Parallel()
	a, _, _ := twoProcesses(t, zuora.LimitConfig{Key: "bound", MaxPause: time.Hour})
	err := a.Observe(context.Background(), 429, upstream.Limits{Wait: 1000 * time.Hour, Source: upstream.WaitRateLimitReset})
	if err != nil {
		t.Fatal(err)
	}
	if st := state(t, a); st.Paused <= 59*time.Minute || st.Paused > time.Hour {
		t.Fatalf("pause %+v; want at most an hour", st)
	}
}

// Zuora keeps several concurrency pools (Concurrency-Limit-Type): a pool
// with room never lifts the cap another pool's pressure set; the same pool
// does.
func TestLimitConcurrencyPoolsDontLiftEachOther(t *testing.T) {
	t.Parallel()
	a, _, _ := twoProcesses(t, zuora.LimitConfig{Key: "pools", Concurrency: 8, Reserve: 0.2})
	ctx := context.Background()
	seen := func(typ string, limit, remaining int) int {
		t.Helper()
		if err := a.Observe(ctx, 200, upstream.Limits{HasConcurrency: true, ConcurrencyType: typ,
			ConcurrencyLimit: limit, ConcurrencyRemaining: remaining}); err != nil {
			t.Fatal(err)
		}
		return state(t, a).Cap
	}
	if got := seen("Default", 10, 1); got != 1 { // 1 + 1 − 2
		t.Fatalf("cap %d after the default pool's pressure; want 1", got)
	}
	if got := seen("HighVolume", 200, 190); got != 1 {
		t.Fatalf("cap %d after another pool with room; want the default pool's 1 kept", got)
	}
	if got := seen("Default", 10, 9); got != 8 {
		t.Fatalf("cap %d after the default pool has room; want lifted to 8", got)
	}
}
