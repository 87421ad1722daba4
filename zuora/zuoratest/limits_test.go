package zuoratest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// The sandbox answers limits the way Zuora's rate-limit guide documents:
// RateLimit-* headers for the window closest to exhaustion on every answer,
// budgets per minute, hour and day (fixed UTC windows on the sandbox clock),
// and 429s with or without Retry-After.
func TestBudgetsAnswerTheDocumentedHeaders(t *testing.T) {
	t.Parallel()
	s := seeded(t, WithLimits(0, 1000), WithBudgets(5, 8))
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 10, 59, 30, 0, time.UTC)
	s.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	move := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	tok := token(t, s)
	get := func() (int, map[string]string) {
		resp, _ := call(t, context.Background(), s, tok, "GET", "/v1/orders/O-00000101", "")
		h := map[string]string{}
		for _, k := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"} {
			h[k] = resp.Header.Get(k)
		}
		return resp.StatusCode, h
	}
	// The hour (5) is closest to exhaustion; it resets in 30 s.
	st, h := get()
	if st != 200 || h["RateLimit-Limit"] != "5, 1000;w=60, 5;w=3600, 8;w=86400" || h["RateLimit-Remaining"] != "4" ||
		h["RateLimit-Reset"] != "30" {
		t.Fatalf("first answer %d %v", st, h)
	}
	for range 4 {
		get()
	}
	// The hour is spent: 429 with Retry-After at its reset.
	st, h = get()
	if st != 429 || h["RateLimit-Remaining"] != "0" || h["RateLimit-Reset"] != "30" || h["Retry-After"] != "30" {
		t.Fatalf("over the hour: %d %v", st, h)
	}
	// Switched off, the 429 carries the ratelimit-* headers alone.
	s.SetRetryAfter(false)
	if st, h = get(); st != 429 || h["Retry-After"] != "" || h["RateLimit-Reset"] != "30" {
		t.Fatalf("without Retry-After: %d %v", st, h)
	}
	// A new hour: the day (8, 5 used) is now closest, resetting at midnight.
	move(31 * time.Second)
	st, h = get()
	if st != 200 || h["RateLimit-Limit"] != "8, 1000;w=60, 5;w=3600, 8;w=86400" || h["RateLimit-Remaining"] != "2" ||
		h["RateLimit-Reset"] != "46799" {
		t.Fatalf("next hour: %d %v", st, h)
	}
	// Other integrations spend the rest of the day.
	s.SpendBudget(2)
	if st, h = get(); st != 429 || h["RateLimit-Remaining"] != "0" || h["RateLimit-Reset"] != "46799" {
		t.Fatalf("day spent: %d %v", st, h)
	}
	if s.Throttled() != 3 {
		t.Fatalf("throttled %d; want 3", s.Throttled())
	}
}

// Other integrations' requests in flight count toward the concurrency limit
// and show in Concurrency-Limit-Remaining.
func TestOthersInFlightShareTheConcurrencyLimit(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	tok := token(t, s)
	resp, b := call(t, context.Background(), s, "", "PUT", "/sandbox/limits",
		`{"concurrency":5,"per_minute":100,"retry_after":false,"others_in_flight":4}`)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT limits: %d %s", resp.StatusCode, b)
	}
	resp, _ = call(t, context.Background(), s, tok, "GET", "/v1/orders/O-00000101", "")
	if resp.StatusCode != 200 || resp.Header.Get("Concurrency-Limit-Limit") != "5" ||
		resp.Header.Get("Concurrency-Limit-Remaining") != "0" || resp.Header.Get("Concurrency-Limit-Type") != "Default" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	s.SetOthersInFlight(5)
	resp, _ = call(t, context.Background(), s, tok, "GET", "/v1/orders/O-00000101", "")
	// Without Retry-After (switched off), with the rate budget not spent.
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "" || resp.Header.Get("RateLimit-Remaining") == "0" ||
		resp.Header.Get("Concurrency-Limit-Remaining") != "0" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	if s.PeakInFlight() != 1 {
		t.Fatalf("peak in flight %d; want 1 (the others' are not the sandbox's own)", s.PeakInFlight())
	}
	// Bad input is refused and changes nothing.
	resp, b = call(t, context.Background(), s, "", "PUT", "/sandbox/limits", `{"concurrency":5,"per_day":-1}`)
	var e struct{ Error string }
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode != 400 || e.Error == "" {
		t.Fatalf("negative budget: %d %s", resp.StatusCode, b)
	}
	resp, _ = call(t, context.Background(), s, tok, "GET", "/v1/orders/O-00000101", "")
	if resp.StatusCode != 429 {
		t.Fatalf("limits changed by a refused PUT: %d", resp.StatusCode)
	}
}
