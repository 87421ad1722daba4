package main

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// TestResilienceRedisDataLoss: Redis loses its data (FLUSHALL: the same as a
// restart without persistence or a failover to an empty replica) while
// syncs run and tasks are pending. The syncs in flight read Zuora before the
// loss and are held at their Limio reads; Zuora then changes again. Every
// process (one ingress, two workers) notices the loss; the running syncs stop
// before writing; callouts after the loss are synced; one catch-up sweep
// (sweep otherwise off) syncs the subscriptions whose tasks were lost. At the
// end every Limio subscription is at Zuora's last state and no two writes of
// one subscription were ever in flight together.
func TestResilienceRedisDataLoss(t *testing.T) {
	slowTests(t)
	t.Parallel()
	const n = 8
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	zs, ls := zuoratest.NewServer(t), limiotest.NewServer(t)
	s1, s2, s3 := initialState(), initialState(), initialState()
	s2.Rev, s2.City = 1, "Paris"
	s3.Rev, s3.City, s3.AutoRenew = 2, "Berlin", false
	states := map[int][]subState{}
	for i := range n {
		states[i] = []subState{s1, s3}
	}
	want := reference(t, states)

	// Limio starts at s1; Zuora moves to s2 and calls out for every subscription.
	c := testConfig(t, rs, zs, ls)
	s := newTestSyncer(t, c, rdb, zap.NewNop())
	for i := range n {
		putSub(t, zs, i, s1)
		if _, err := s.Sync(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceManual}); err != nil {
			t.Fatal(err)
		}
		putSub(t, zs, i, s2)
	}

	// Limio reads before the loss are held until the syncs that sent them
	// have given up: those syncs hold locks across the loss.
	proxy := newUpstreamProxy(t, ls.URL)
	var lost atomic.Bool
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	proxy.setHold(func(r *http.Request) <-chan struct{} {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/") && !lost.Load() {
			return release
		}
		return nil
	})

	addr := freeAddr(t)
	base := "http://" + addr
	cfgFile := sweepOff(t)
	env := upstreamEnv(rs, zs, ls, "ZSYNC_LIMIO_BASE_URL="+proxy.URL, "ZSYNC_HTTP_ADDR="+addr,
		"ZSYNC_CALLOUT_USERNAME="+testCalloutUser, "ZSYNC_CALLOUT_PASSWORD="+testCalloutPass,
		"ZSYNC_OPERATOR_TOKEN="+testOperatorTok, "ZSYNC_WORKER_CONCURRENCY=3", "ZSYNC_WORKER_COALESCE_WINDOW=-1s",
		// Only the loss may stop a held read: no timeout within the test.
		"ZSYNC_LIMIO_TIMEOUT=10m")
	srv := startProc(t, "serve", env, "serve", "--config", cfgFile)
	waitHTTP(t, srv, base+"/healthz", 30*time.Second)
	works := []*proc{
		startProc(t, "work-1", env, "work", "--config", cfgFile),
		startProc(t, "work-2", env, "work", "--config", cfgFile),
	}
	// Every process has written or seen the marker before the loss.
	eventually(t, 30*time.Second, "the Redis marker", func() bool {
		return rdb.Exists(t.Context(), "zsync:redis:marker").Val() == 1
	})
	for i := range n {
		if st, _ := postCallout(t, base, subNumber(i)); st != "enqueued" {
			t.Fatalf("callout %s before the loss: %s", subNumber(i), st)
		}
	}
	eventually(t, 30*time.Second, "six syncs holding locks, held at their Limio reads", func() bool {
		locks, _ := rdb.Keys(t.Context(), "zsync:lock:*").Result()
		return len(locks) == 6 && proxy.heldNow() >= 6
	})

	for i := range n {
		putSub(t, zs, i, s3)
	}
	lost.Store(true)
	if err := rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	// Callouts after the loss, for half the subscriptions; the other half
	// have only the catch-up sweep.
	for i := 0; i < n; i += 2 {
		if st, _ := postCallout(t, base, subNumber(i)); st != "enqueued" {
			t.Errorf("callout %s after the loss: %s; want enqueued", subNumber(i), st)
		}
	}
	for _, p := range append([]*proc{srv}, works...) {
		eventually(t, 30*time.Second, p.name+" to notice the loss", func() bool {
			return strings.Contains(p.out.String(), "redis lost its data: stopping running syncs")
		})
	}
	// The syncs in flight across the loss give up their held Limio reads:
	// stopped by the loss, since the Limio timeout is far longer than this
	// wait. Without the fix they would still be waiting, and would write the
	// state they read before the loss once released.
	eventually(t, 60*time.Second, "the syncs in flight across the loss to give up", func() bool {
		return proxy.abandonedNow() >= 6
	})
	releaseAll()
	converged(t, ls, want, 60*time.Second)

	catchUps := func() int {
		n := 0
		for _, p := range works {
			n += strings.Count(p.out.String(), "catch-up sweep after a Redis data loss")
		}
		return n
	}
	eventually(t, 30*time.Second, "the catch-up sweep to be logged", func() bool { return catchUps() > 0 })
	if n := catchUps(); n != 1 {
		t.Errorf("catch-up sweeps run: %d; want exactly 1 across the workers", n)
	}
	// Only the syncs running before the loss read s2 (Zuora moved on to s3
	// before any sync after it started): none of them may have written.
	for _, r := range proxy.requests() {
		for i := range n {
			stale, _ := genSub(t, i, s2)
			if r.method == http.MethodPut && r.path == subWritePath(i) && strings.Contains(string(r.body), `"`+stale.ID+`"`) {
				t.Errorf("%s: a sync that read Zuora before the loss wrote after it (%s %s)", subNumber(i), r.method, r.path)
			}
		}
	}
	if o := overlappingWrites(proxy.requests()); len(o) > 0 {
		t.Errorf("two syncs wrote one subscription at once:\n%s", strings.Join(o, "\n"))
	}
	_, m := scrapeURL(t, base+"/metrics", testOperatorTok)
	if m["zsync_redis_data_loss_total"] != 1 {
		t.Errorf("ingress zsync_redis_data_loss_total = %v; want 1", m["zsync_redis_data_loss_total"])
	}
}
