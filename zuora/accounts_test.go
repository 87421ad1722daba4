package zuora_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

func TestAccountSubscriptionsPagesThroughEverySubscription(t *testing.T) {
	t.Parallel()
	srv := contractServer(t)
	if err := srv.Seed(os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	// 95 subscriptions on A00000101 (pages of 40: three requests), one on 102.
	base, _ := srv.Subscription("A-S00000101")
	for i := range 94 {
		sub := base
		sub.ID, sub.SubscriptionNumber = fmt.Sprintf("8a8aa0c19a4f0101000000000%07d", i), fmt.Sprintf("A-S0009%04d", i)
		if err := srv.PutSubscription(sub); err != nil {
			t.Fatal(err)
		}
	}
	c, err := zuora.New(srv.Config(), zuora.WithHTTPClient(contractHTTP(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"A00000101", "8a8aa0c19a4f01010000000000acc101"} { // by number and by id
		var got []string
		if err := c.AccountSubscriptions(context.Background(), key, func(n string) error {
			got = append(got, n)
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if len(got) != 95 || !slices.Contains(got, "A-S00000101") || slices.Contains(got, "A-S00000102") {
			t.Fatalf("%s: %d subscriptions %v…; want the account's 95", key, len(got), got[:min(3, len(got))])
		}
	}
	if n := srv.Count(http.MethodGet, "/v1/subscriptions/accounts/A00000101"); n != 3 {
		t.Errorf("listing requests = %d; want 3 pages of at most 40", n)
	}
}

func TestAccountSubscriptionsOfAnUnknownAccountIsNotFound(t *testing.T) {
	t.Parallel()
	for _, style := range []zuoratest.NotFoundStyle{zuoratest.NotFound404, zuoratest.NotFound200} {
		srv := contractServer(t, zuoratest.WithNotFoundStyle(style))
		c, err := zuora.New(srv.Config(), zuora.WithHTTPClient(contractHTTP(t, nil)))
		if err != nil {
			t.Fatal(err)
		}
		err = c.AccountSubscriptions(context.Background(), "A09999999", func(string) error { return nil })
		if !errors.Is(err, upstream.ErrNotFound) || upstream.IsRetryable(err) {
			t.Errorf("style %d: err = %v; want a permanent not found", style, err)
		}
	}
	c, _ := zuora.New(contractServer(t).Config(), zuora.WithHTTPClient(contractHTTP(t, nil)))
	if err := c.AccountSubscriptions(context.Background(), "../x", func(string) error { return nil }); err == nil || upstream.IsRetryable(err) {
		t.Errorf("bad key: err = %v; want a permanent error before any request", err)
	}
}

func TestChangedAccountsSeesAccountAndContactEdits(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := contractServer(t, zuoratest.WithPageSize(1))
	srv.SetClock(clock)
	if err := srv.Seed(os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	c, err := zuora.New(srv.Config(), zuora.WithHTTPClient(contractHTTP(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	changed := func(since time.Time) []string {
		t.Helper()
		var got []string
		if err := c.ChangedAccounts(context.Background(), since, func(k string) error {
			got = append(got, k)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		return got
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	since := clock()
	if got := changed(since); len(got) != 0 {
		t.Fatalf("nothing edited since %s, got %v", since, got)
	}

	// Edit 102's bill-to e-mail: the account and that contact move, the
	// sold-to contact doesn't.
	offContract(t, "/v1/accounts/A00000102", "lenient fixture") // forms beyond the spec, on purpose
	acc, err := c.GetAccount(context.Background(), "A00000102")
	if err != nil {
		t.Fatal(err)
	}
	acc.BillToContact.WorkEmail = "grace.new@example.com"
	if err := srv.PutAccount(*acc); err != nil {
		t.Fatal(err)
	}
	// Edit 101's name only: the account moves, its contacts don't.
	acc1, err := c.GetAccount(context.Background(), "A00000101")
	if err != nil {
		t.Fatal(err)
	}
	acc1.BasicInfo.Name = "Ada King"
	if err := srv.PutAccount(*acc1); err != nil {
		t.Fatal(err)
	}
	got := changed(since)
	// From Account (by number) and from 102's bill-to Contact (by account id).
	want := []string{"A00000101", "A00000102", "8a8aa0c19a4f01020000000000acc102"}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("changed = %v; want %v", got, want)
	}
	if n := srv.Count(http.MethodPost, "/v1/action/queryMore"); n == 0 {
		t.Error("no queryMore: two account rows in pages of 1 should page")
	}
}
