package bench

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// The Zuora side of every benchmark subscription is the dev seed's
// A-S00000201 (a monthly digital pack, account A00000201) with its numbers
// rewritten, so each one has its own account, charges and billing preview.

//go:embed testdata/subscription.json
var subscriptionTmpl string

//go:embed testdata/account.json
var accountTmpl string

// subNumber is the Zuora number of benchmark subscription i.
func subNumber(i int) string { return fmt.Sprintf("A-S%08d", 10000000+i) }

// seedZuora stores n subscriptions and their accounts in the sandbox.
func seedZuora(b testing.TB, zs *zuoratest.Server, n int) []string {
	b.Helper()
	keys := make([]string, n)
	for i := range n {
		num := fmt.Sprintf("%08d", 10000000+i)
		r := strings.NewReplacer("00000201", num, "8ad2020102", "8ad2"+num, "O-0000201", "O-"+num, "8ad30201", "8ad3"+num)
		if err := zs.PutAccount(decode[zuora.Account](b, r.Replace(accountTmpl))); err != nil {
			b.Fatal(err)
		}
		if err := zs.PutSubscription(decode[zuora.Subscription](b, r.Replace(subscriptionTmpl))); err != nil {
			b.Fatal(err)
		}
		keys[i] = subNumber(i)
	}
	return keys
}

// upstreams is the pair of sandboxes with clients wired as cmd/zsync's
// newSyncer wires them: the Redis tenant limiter on Zuora, the Redis index
// on Limio.
type upstreams struct {
	zs *zuoratest.Server
	ls *limiotest.Server
	s  *syncer.Syncer
}

// newUpstreams starts both sandboxes; the Zuora tenant and zsync's limiter
// both allow limit concurrent requests.
func newUpstreams(b testing.TB, rdb redis.UniversalClient, limit int, log *zap.Logger) *upstreams {
	b.Helper()
	u := &upstreams{zs: zuoratest.NewServer(b, zuoratest.WithLimits(limit, 0)), ls: limiotest.NewServer(b)}
	limiter := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Concurrency: limit, Lease: zuora.DefaultTimeout + 10*time.Second})
	zc, err := zuora.New(u.zs.Config(), zuora.WithLimiter(limiter))
	if err != nil {
		b.Fatal(err)
	}
	lc, err := limio.New(limio.Config{BaseURL: u.ls.URL, ClientID: "sandbox", ClientSecret: "sandbox"},
		limio.WithIndex(limio.NewRedisIndex(rdb, "")))
	if err != nil {
		b.Fatal(err)
	}
	u.s = syncer.New(syncer.Config{}, zc, lc, log)
	return u
}

// apiCounts is what both sandboxes served, tokens and admin calls aside.
type apiCounts struct {
	zuoraReads, limioReads, limioWrites, throttled int
}

func (u *upstreams) counts() apiCounts {
	return apiCounts{
		zuoraReads:  u.zs.Count(http.MethodGet, "/v1/") + u.zs.Count(http.MethodPost, "/v1/"),
		limioReads:  u.ls.Count(http.MethodGet, "/api/"),
		limioWrites: u.ls.Count(http.MethodPut, "/api/") + u.ls.Count(http.MethodPost, "/api/"),
		throttled:   u.zs.Throttled(),
	}
}

func (a apiCounts) minus(o apiCounts) apiCounts {
	return apiCounts{a.zuoraReads - o.zuoraReads, a.limioReads - o.limioReads, a.limioWrites - o.limioWrites, a.throttled - o.throttled}
}

// doneCounter is a worker.Metrics counting recorded task runs by outcome.
type doneCounter struct {
	mu       sync.Mutex
	outcomes map[syncer.Result]int
	total    atomic.Int64
	lockBusy atomic.Int64
}

func newDoneCounter() *doneCounter { return &doneCounter{outcomes: map[syncer.Result]int{}} }

func (d *doneCounter) Enqueue(string, worker.EnqueueStatus) {}
func (d *doneCounter) LockBusy(string)                      { d.lockBusy.Add(1) }
func (d *doneCounter) TaskDone(_ string, out syncer.Result, _ time.Duration) {
	d.mu.Lock()
	d.outcomes[out]++
	d.mu.Unlock()
	d.total.Add(1)
}

func (d *doneCounter) snapshot() map[syncer.Result]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[syncer.Result]int, len(d.outcomes))
	for k, v := range d.outcomes {
		out[k] = v
	}
	return out
}

// waitFor polls cond until it holds or within passes.
func waitFor(ctx context.Context, within time.Duration, cond func() bool) bool {
	return waittest.Until(ctx, within, cond)
}

func decode[T any](b testing.TB, s string) T {
	b.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		b.Fatal(err)
	}
	return v
}
