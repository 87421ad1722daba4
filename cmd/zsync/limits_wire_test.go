package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// The zuora.* limit keys reach the tenant limiter the processes build: each
// budget lets its burst (a tenth) through, then throttles; the slow-down
// and the concurrency reserve act on the sandbox's headers, as seen in the
// shared state under the default key.
func TestZuoraLimitKeysAreWired(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		set  func(*config.Zuora)
	}{
		{"rate_per_minute", func(z *config.Zuora) { z.RatePerMinute = 10 }},
		{"rate_per_hour", func(z *config.Zuora) { z.RatePerHour = 10 }},
		{"rate_per_day", func(z *config.Zuora) { z.RatePerDay = 10 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			zc, srv, _ := wiredZuora(t, tt.set)
			ctx := context.Background()
			if _, err := zc.GetSubscription(ctx, "A-S00000101"); err != nil {
				t.Fatal(err)
			}
			_, err := zc.GetSubscription(ctx, "A-S00000101")
			var e *upstream.Error
			if !errors.As(err, &e) || e.Kind != upstream.Throttled || !strings.Contains(e.Message, "budget") ||
				srv.Count("", "/v1/") != 1 {
				t.Fatalf("second call: %v, %d requests; want the budget to hold it back", err, srv.Count("", "/v1/"))
			}
		})
	}
	t.Run("rate_slow_below and concurrency_reserve", func(t *testing.T) {
		t.Parallel()
		zc, srv, lim := wiredZuora(t, func(z *config.Zuora) {
			z.Concurrency, z.ConcurrencyReserve, z.RateSlowBelow = 8, 0.2, 0.2
		})
		srv.SetLimits(10, 100)
		srv.SetOthersInFlight(6)
		srv.SpendBudget(80)
		if _, err := zc.GetSubscription(context.Background(), "A-S00000101"); err != nil {
			t.Fatal(err)
		}
		st, err := lim.State(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Cap != 2 || st.Spacing == 0 {
			t.Fatalf("shared state %+v; want the cap shrunk to 2 and a spacing", st)
		}
	})
}

// wiredZuora is the Zuora client newZuoraClient builds from config for a
// seeded sandbox (clock stopped), and a limiter reading the same Redis keys.
func wiredZuora(t *testing.T, set func(*config.Zuora)) (*zuora.Client, *zuoratest.Server, *zuora.TenantLimiter) {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	srv := zuoratest.NewServer(t)
	if err := srv.Seed(os.DirFS("../../zuora/testdata")); err != nil {
		t.Fatal(err)
	}
	srv.SetClock(func() time.Time { return time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC) })
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Zuora.BaseURL, c.Zuora.ClientID, c.Zuora.ClientSecret = srv.URL, "sandbox", "sandbox"
	set(&c.Zuora)
	zc, err := newZuoraClient(c, rdb)
	if err != nil {
		t.Fatal(err)
	}
	return zc, srv, zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Concurrency: c.Zuora.Concurrency})
}
