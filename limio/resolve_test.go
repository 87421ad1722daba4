package limio_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
)

// lists counts subscription list requests (scan pages); gets counts single
// subscription GETs.
func lists(b *bundle) int { return b.srv.Requests()["GET /api/objects/limio/subscriptions"] }

func gets(b *bundle) int {
	return b.srv.Count(http.MethodGet, "/api/objects/limio/subscriptions/")
}

func TestResolveWithoutIndex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, key string
		wantLists int
	}{
		{"by id: one GET, no scan", seedSub, 0},
		{"by reference", seedRef, 1},
		{"by Zuora number", seedZuora, 1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s, err := b.client.Resolve(t.Context(), tc.key)
			if err != nil {
				t.Fatalf("Resolve(%s): %v", tc.key, err)
			}
			if s.ID != seedSub || s.Data.TermStartDate == "" {
				t.Errorf("Resolve(%s) = %s (full object: %v); want %s", tc.key, s.ID, s.Data.TermStartDate != "", seedSub)
			}
			if got := lists(b); got != tc.wantLists {
				t.Errorf("list requests = %d; want %d", got, tc.wantLists)
			}
			if got := gets(b); got != 1 {
				t.Errorf("GET requests = %d; want 1", got)
			}
		})
	}
	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.client.Resolve(t.Context(), "A-S99999999")
		if !errors.Is(err, upstream.ErrNotFound) {
			t.Fatalf("Resolve(unknown) = %v; want not found", err)
		}
		var e *upstream.Error
		if !errors.As(err, &e) || e.Kind != upstream.NotFound {
			t.Errorf("error = %#v; want *upstream.Error Kind NotFound", err)
		}
	})
	t.Run("unknown sub- id is not found without a scan", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, err := b.client.Resolve(t.Context(), "sub-missing"); !errors.Is(err, upstream.ErrNotFound) {
			t.Fatalf("Resolve(sub-missing) = %v; want not found", err)
		}
		if lists(b) != 0 {
			t.Errorf("scanned for a sub- id")
		}
	})
}

func TestResolveWithRedisIndex(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)

	t.Run("scan across pages warms the index", func(t *testing.T) {
		t.Parallel()
		ix := limio.NewRedisIndex(rdb, "t1:")
		b := setup(t, limio.WithIndex(ix))
		addSubs(t, b.srv, 250) // 251 subscriptions: 3 pages of 100

		s, err := b.client.Resolve(t.Context(), "A-S90000007")
		if err != nil || s.ID != "sub-gen007" {
			t.Fatalf("Resolve = %v, %v; want sub-gen007", s, err)
		}
		if got := lists(b); got != 3 {
			t.Errorf("list requests = %d; want 3 (the whole tenant)", got)
		}
		// Every key of every subscription is now indexed.
		for key, want := range map[string]string{"A-S90000249": "sub-gen249", "REF123": "sub-gen123", seedZuora: seedSub, seedRef: seedSub} {
			if id, ok, err := ix.Get(t.Context(), key); err != nil || !ok || id != want {
				t.Errorf("index[%s] = %q, %v, %v; want %s", key, id, ok, err, want)
			}
		}
		// The next lookups are index hits: one GET each, no scan.
		for _, key := range []string{"A-S90000249", seedRef} {
			if _, err := b.client.Resolve(t.Context(), key); err != nil {
				t.Fatalf("Resolve(%s): %v", key, err)
			}
		}
		if got := lists(b); got != 3 {
			t.Errorf("list requests after hits = %d; want still 3", got)
		}
		if got := gets(b); got != 3 {
			t.Errorf("GET requests = %d; want 3", got)
		}
	})

	t.Run("stale entry pointing to another subscription", func(t *testing.T) {
		t.Parallel()
		ix := limio.NewRedisIndex(rdb, "t2:")
		b := setup(t, limio.WithIndex(ix))
		addSubs(t, b.srv, 2)
		if err := b.client.Remember(t.Context(), seedZuora, "sub-gen001"); err != nil {
			t.Fatal(err)
		}
		s, err := b.client.Resolve(t.Context(), seedZuora)
		if err != nil || s.ID != seedSub {
			t.Fatalf("Resolve = %v, %v; want %s", s, err, seedSub)
		}
		if id, _, _ := ix.Get(t.Context(), seedZuora); id != seedSub {
			t.Errorf("index after the scan = %q; want %s", id, seedSub)
		}
		if got := lists(b); got != 1 {
			t.Errorf("list requests = %d; want 1", got)
		}
	})

	t.Run("stale entry pointing to a deleted subscription is dropped", func(t *testing.T) {
		t.Parallel()
		ix := limio.NewRedisIndex(rdb, "t3:")
		b := setup(t, limio.WithIndex(ix))
		if err := ix.Put(t.Context(), "A-S00000777", "sub-gone"); err != nil {
			t.Fatal(err)
		}
		_, err := b.client.Resolve(t.Context(), "A-S00000777")
		if !errors.Is(err, upstream.ErrNotFound) {
			t.Fatalf("Resolve = %v; want not found", err)
		}
		if _, ok, _ := ix.Get(t.Context(), "A-S00000777"); ok {
			t.Error("stale entry still in the index")
		}
	})

	t.Run("an index hit refused with a 401 is kept, not scanned", func(t *testing.T) {
		t.Parallel()
		ix := limio.NewRedisIndex(rdb, "t5:")
		b := setup(t, limio.WithIndex(ix))
		if err := ix.Put(t.Context(), seedZuora, seedSub); err != nil {
			t.Fatal(err)
		}
		b.srv.AddFault(sandbox.Fault{Path: "/api/", Status: http.StatusUnauthorized, Count: 2})
		_, err := b.client.Resolve(t.Context(), seedZuora)
		var e *upstream.Error
		if !errors.As(err, &e) || e.Kind != upstream.Unauthorized {
			t.Fatalf("Resolve = %v; want the 401", err)
		}
		if id, ok, _ := ix.Get(t.Context(), seedZuora); !ok || id != seedSub {
			t.Errorf("index after the 401 = %q, %v; want %s kept", id, ok, seedSub)
		}
		if lists(b) != 0 {
			t.Error("scanned every subscription after a 401: the credentials, not the mapping, were refused")
		}
	})

	t.Run("Remember makes a created subscription findable without a scan", func(t *testing.T) {
		t.Parallel()
		ix := limio.NewRedisIndex(rdb, "t4:")
		b := setup(t, limio.WithIndex(ix))
		id := limio.NewID("sub", "A-S00000555")
		sub := limio.Subscription{
			Envelope: limio.Envelope{RecordType: limio.RecordSubscription, Status: limio.StatusActive, Reference: "A-S00000555"},
			Data:     limio.SubscriptionData{Zuora: &limio.ZuoraRef{SubscriptionNumber: "A-S00000555"}, CreatedBySync: true},
		}
		if err := b.client.Create(t.Context(), limio.PathSubscriptions, id, sub); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := b.client.Remember(t.Context(), "A-S00000555", id); err != nil {
			t.Fatalf("Remember: %v", err)
		}
		s, err := b.client.Resolve(t.Context(), "A-S00000555")
		if err != nil || s.ID != id || !s.Data.CreatedBySync {
			t.Fatalf("Resolve = %+v, %v", s, err)
		}
		if lists(b) != 0 {
			t.Error("scanned although the index knew the key")
		}
	})

	t.Run("an unreachable index is a miss", func(t *testing.T) {
		t.Parallel()
		b := setup(t, limio.WithIndex(brokenIndex{}))
		s, err := b.client.Resolve(t.Context(), seedZuora)
		if err != nil || s.ID != seedSub {
			t.Fatalf("Resolve = %v, %v", s, err)
		}
	})

	t.Run("a hit read or written once is served from the process", func(t *testing.T) {
		t.Parallel()
		rs := redistest.Start(t)
		own := rs.Client(t)
		ix := limio.NewRedisIndex(own, "")
		if err := ix.Put(t.Context(), "A-S2", "sub-2"); err != nil {
			t.Fatal(err)
		}
		if err := rs.Client(t).Set(t.Context(), "zsync:limio:index:A-S3", "sub-3", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := ix.Get(t.Context(), "A-S3"); err != nil || !ok || v != "sub-3" {
			t.Fatalf("Get(A-S3) = %q, %v, %v", v, ok, err)
		}
		// Redis gone: what this process read or wrote is still known.
		rs.Stop()
		for key, want := range map[string]string{"A-S2": "sub-2", "A-S3": "sub-3"} {
			if v, ok, err := ix.Get(t.Context(), key); err != nil || !ok || v != want {
				t.Errorf("Get(%s) with Redis down = %q, %v, %v; want %s from the process", key, v, ok, err, want)
			}
		}
		if _, _, err := ix.Get(t.Context(), "A-S4"); err == nil {
			t.Error("Get of an unknown key with Redis down: no error")
		}
	})

	t.Run("a stale entry another process replaced is verified and repaired", func(t *testing.T) {
		t.Parallel()
		mine, theirs := limio.NewRedisIndex(rdb, "t6:"), limio.NewRedisIndex(rdb, "t6:")
		b := setup(t, limio.WithIndex(mine))
		addSubs(t, b.srv, 2)
		if err := mine.Put(t.Context(), seedZuora, "sub-gen001"); err != nil {
			t.Fatal(err)
		}
		if err := theirs.Put(t.Context(), seedZuora, seedSub); err != nil {
			t.Fatal(err)
		}
		s, err := b.client.Resolve(t.Context(), seedZuora)
		if err != nil || s.ID != seedSub {
			t.Fatalf("Resolve = %v, %v; want %s", s, err, seedSub)
		}
		if id, _, _ := mine.Get(t.Context(), seedZuora); id != seedSub {
			t.Errorf("index after the repair = %q; want %s", id, seedSub)
		}
	})

	t.Run("default prefix", func(t *testing.T) {
		t.Parallel()
		ix := limio.NewRedisIndex(rdb, "")
		if err := ix.Put(t.Context(), "A-S1", "sub-1"); err != nil {
			t.Fatal(err)
		}
		if v, err := rdb.Get(t.Context(), "zsync:limio:index:A-S1").Result(); err != nil || v != "sub-1" {
			t.Errorf("redis zsync:limio:index:A-S1 = %q, %v", v, err)
		}
	})
}

// brokenIndex is an Index whose store is down.
type brokenIndex struct{}

func (brokenIndex) Get(context.Context, string) (string, bool, error) {
	return "", false, errors.New("connection refused")
}
func (brokenIndex) Put(context.Context, string, string) error {
	return errors.New("connection refused")
}
