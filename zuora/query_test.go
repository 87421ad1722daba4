package zuora_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

func TestQuerySubscriptionsPagesAndDedupes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := contractServer(t, zuoratest.WithPageSize(2))
	srv.SetClock(clock)
	if err := srv.Seed(os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	c, err := zuora.New(srv.Config(), zuora.WithHTTPClient(contractHTTP(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Two later versions of 101 (new ids), an hour later: five version rows.
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	since := clock()
	sub, _ := srv.Subscription("A-S00000101")
	for i, id := range []string{"8a8aa0c19a4f0101000000000000b101", "8a8aa0c19a4f0101000000000000c101"} {
		sub.ID, sub.Version = id, zuora.Int(4+i)
		if err := srv.PutSubscription(sub); err != nil {
			t.Fatal(err)
		}
	}

	var all []string
	if err := c.QuerySubscriptions(ctx, zuora.SubscriptionQuery{}, func(n string) error {
		all = append(all, n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(all)
	if want := []string{"A-S00000101", "A-S00000102", "A-S00000103"}; !slices.Equal(all, want) {
		t.Fatalf("all = %v; want %v", all, want)
	}
	if n := srv.Count(http.MethodPost, "/v1/action/queryMore"); n != 2 {
		t.Errorf("queryMore calls = %d; want 2 (5 rows, pages of 2)", n)
	}

	changed, err := c.ChangedSubscriptions(ctx, since)
	if err != nil || !slices.Equal(changed, []string{"A-S00000101"}) {
		t.Fatalf("changed = %v, %v", changed, err)
	}
	var cancelled []string
	err = c.QuerySubscriptions(ctx, zuora.SubscriptionQuery{Status: "Cancelled"}, func(n string) error {
		cancelled = append(cancelled, n)
		return nil
	})
	if err != nil || !slices.Equal(cancelled, []string{"A-S00000103"}) {
		t.Fatalf("cancelled = %v, %v", cancelled, err)
	}
	// An old version's id still finds the latest version.
	if s, err := c.GetSubscription(ctx, "8a8aa0c19a4f0101000000000000b101"); err != nil || s.Version != 5 {
		t.Fatalf("old id: %v %v", s, err)
	}

	// fn's error stops the query.
	stop := errors.New("stop")
	calls := 0
	err = c.QuerySubscriptions(ctx, zuora.SubscriptionQuery{}, func(string) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("err %v calls %d", err, calls)
	}
}

// Termed subscriptions whose term ends in a date range, both ends included;
// evergreen ones never match; a bad range is refused before any request.
func TestQuerySubscriptionsByTermEnd(t *testing.T) {
	t.Parallel()
	srv := contractServer(t)
	for number, sub := range map[string]zuora.Subscription{
		"A-S1": {TermType: "TERMED", TermEndDate: "2026-11-23"},
		"A-S2": {TermType: "TERMED", TermEndDate: "2026-11-24"},
		"A-S3": {TermType: "TERMED", TermEndDate: "2026-11-25"},
		"A-S4": {TermType: "EVERGREEN"},
	} {
		sub.SubscriptionNumber, sub.Status = number, "Active"
		if err := srv.PutSubscription(sub); err != nil {
			t.Fatal(err)
		}
	}
	c, err := zuora.New(srv.Config(), zuora.WithHTTPClient(contractHTTP(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = c.QuerySubscriptions(context.Background(), zuora.SubscriptionQuery{TermEndFrom: "2026-11-23", TermEndTo: "2026-11-24"},
		func(n string) error { got = append(got, n); return nil })
	sort.Strings(got)
	if err != nil || !slices.Equal(got, []string{"A-S1", "A-S2"}) {
		t.Fatalf("term end in [23, 24]: %v, %v; want A-S1 A-S2", got, err)
	}
	before := srv.Count(http.MethodPost, "/v1/action/query")
	for _, q := range []zuora.SubscriptionQuery{{TermEndFrom: "2026-11-24", TermEndTo: "2026-11-23"}, {TermEndFrom: "2026-11-24"}, {TermEndFrom: "x' or '1'='1", TermEndTo: "2026-11-24"}} {
		if err := c.QuerySubscriptions(context.Background(), q, func(string) error { return nil }); err == nil {
			t.Errorf("%+v accepted", q)
		}
	}
	if srv.Count(http.MethodPost, "/v1/action/query") != before {
		t.Error("a refused range was sent")
	}
}

// An operator's --updated-since / updated_since is a date (midnight UTC) or
// an RFC 3339 time, always read into UTC; anything else is ErrUpdatedSince.
func TestParseUpdatedSince(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"2026-01-02", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"2026-01-02T03:04:05Z", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"2026-01-02T03:04:05+02:00", time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC)},
	} {
		got, err := zuora.ParseUpdatedSince(tt.in)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseUpdatedSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "yesterday", "2026-13-01", "2026-01-02 03:04:05"} {
		if _, err := zuora.ParseUpdatedSince(in); !errors.Is(err, zuora.ErrUpdatedSince) {
			t.Errorf("ParseUpdatedSince(%q) err = %v; want ErrUpdatedSince", in, err)
		}
	}
}
