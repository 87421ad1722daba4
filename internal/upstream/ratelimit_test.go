package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestParseLimits(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	// Zuora's rate-limit guide: the quota closest to exhaustion first, then
	// every window's policy.
	zuora := []string{"RateLimit-Limit", "2250000, 50000;w=60, 2250000;w=3600, 27000000;w=86400",
		"RateLimit-Remaining", "0", "RateLimit-Reset", "1800"}
	tests := []struct {
		name       string
		status     int
		h          http.Header
		wantWait   time.Duration
		wantSource WaitSource
		check      func(t *testing.T, l Limits)
	}{
		{"429 with only ratelimit headers waits for the reset", 429, hdr(zuora...), 1800 * time.Second, WaitRateLimitReset,
			func(t *testing.T, l Limits) {
				if !l.HasRate || l.RateLimit != 2250000 || l.RateWindow != time.Hour || l.RateRemaining != 0 || l.RateReset != 1800*time.Second {
					t.Errorf("limits %+v", l)
				}
			}},
		{"Retry-After wins over the reset", 429, hdr(append(zuora, "Retry-After", "7")...), 7 * time.Second, WaitRetryAfter, nil},
		{"Retry-After as an HTTP date", 429, hdr("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), 90 * time.Second, WaitRetryAfter, nil},
		{"503 with Retry-After", 503, hdr("Retry-After", "3"), 3 * time.Second, WaitRetryAfter, nil},
		{"503 without Retry-After is not a pause", 503, hdr(zuora...), 0, WaitNone, nil},
		{"429 with budget left is the concurrency limit", 429, hdr("RateLimit-Limit", "100;w=60", "RateLimit-Remaining", "40",
			"RateLimit-Reset", "30", "Concurrency-Limit-Type", "Default", "Concurrency-Limit-Limit", "40", "Concurrency-Limit-Remaining", "0"),
			ConcurrencyWait, WaitConcurrency, func(t *testing.T, l Limits) {
				if l.RateLimit != 100 || l.RateWindow != time.Minute || !l.HasConcurrency || l.ConcurrencyLimit != 40 ||
					l.ConcurrencyRemaining != 0 || l.ConcurrencyType != "Default" {
					t.Errorf("limits %+v", l)
				}
			}},
		{"429 with reset but no remaining waits for the reset", 429, hdr("RateLimit-Reset", "12"), 12 * time.Second, WaitRateLimitReset, nil},
		{"bare 429", 429, hdr(), ConcurrencyWait, WaitConcurrency, nil},
		{"200 reports, asks no wait", 200, hdr(zuora...), 0, WaitNone, func(t *testing.T, l Limits) {
			if !l.HasRate || l.RateReset != 1800*time.Second {
				t.Errorf("limits %+v", l)
			}
		}},
		{"fractional numbers, as the spec types them", 200, hdr("RateLimit-Remaining", "12.0", "RateLimit-Reset", "1.5"), 0, WaitNone,
			func(t *testing.T, l Limits) {
				if l.RateRemaining != 12 || l.RateReset != 1500*time.Millisecond {
					t.Errorf("limits %+v", l)
				}
			}},
		{"garbage is ignored, not guessed", 429, hdr("RateLimit-Limit", "lots", "RateLimit-Remaining", "-1", "RateLimit-Reset", "soon",
			"Concurrency-Limit-Limit", "x", "Concurrency-Limit-Remaining", "1"), ConcurrencyWait, WaitConcurrency,
			func(t *testing.T, l Limits) {
				if l.HasRate || l.RateLimit != 0 || l.RateReset != 0 || l.HasConcurrency {
					t.Errorf("limits %+v", l)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ParseLimits(tt.status, tt.h, now)
			if l.Wait != tt.wantWait || l.Source != tt.wantSource {
				t.Errorf("wait %v (%q); want %v (%q)", l.Wait, l.Source, tt.wantWait, tt.wantSource)
			}
			if tt.check != nil {
				tt.check(t, l)
			}
		})
	}
}

// A 429 that carries only the ratelimit-* headers (the rate-limit guide's
// example) asks callers to wait until the reset: the error says so, and the
// client's hooks hear it.
func TestDo429WithoutRetryAfterUsesReset(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Limit", "25000, 12500;w=60, 25000;w=3600, 50000;w=86400")
		w.Header().Set("RateLimit-Remaining", "0")
		w.Header().Set("RateLimit-Reset", "1200")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	var paused time.Duration
	lim := &observingLimiter{}
	c := &Client{API: "test", BaseURL: srv.URL, HTTP: srv.Client(), Limiter: lim,
		OnRetryAfter: func(d time.Duration) { paused = d }}
	err := c.Do(context.Background(), Request{Method: "GET", Path: "/x", Op: "GET /x"}, nil)
	if !errors.Is(err, ErrThrottled) || RetryAfter(err) != 20*time.Minute {
		t.Fatalf("err = %v (retry after %v); want throttled for the reset", err, RetryAfter(err))
	}
	heard := lim.heard
	if lim.released != 1 || lim.status != 429 || paused != 20*time.Minute || heard.Source != WaitRateLimitReset || heard.RateLimit != 25000 || heard.RateWindow != time.Hour {
		t.Fatalf("paused %v, heard %+v", paused, heard)
	}
}

// observingLimiter records what an ObservingLimiter is told.
type observingLimiter struct {
	released, status int
	heard            Limits
}

func (o *observingLimiter) Acquire(ctx context.Context) (func(), error) {
	panic("an ObservingLimiter is acquired with AcquireObserved")
}

func (o *observingLimiter) AcquireObserved(ctx context.Context) (func(), func(int, Limits), error) {
	return func() { o.released++ }, func(status int, l Limits) {
		if o.released != 1 {
			panic("observed before the slot was released")
		}
		o.status, o.heard = status, l
	}, nil
}
