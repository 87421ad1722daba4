package bench

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/limio"
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
	if err := seedZuoraInto(zs, n); err != nil {
		b.Fatal(err)
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = subNumber(i)
	}
	return keys
}

// seedZuoraInto is seedZuora for the helper process (no testing.TB there).
func seedZuoraInto(zs *zuoratest.Server, n int) error {
	for i := range n {
		num := fmt.Sprintf("%08d", 10000000+i)
		r := strings.NewReplacer("00000201", num, "8ad2020102", "8ad2"+num, "O-0000201", "O-"+num, "8ad30201", "8ad3"+num)
		var acc zuora.Account
		if err := json.Unmarshal([]byte(r.Replace(accountTmpl)), &acc); err != nil {
			return err
		}
		if err := zs.PutAccount(acc); err != nil {
			return err
		}
		var sub zuora.Subscription
		if err := json.Unmarshal([]byte(r.Replace(subscriptionTmpl)), &sub); err != nil {
			return err
		}
		if err := zs.PutSubscription(sub); err != nil {
			return err
		}
	}
	return nil
}

// upstreams is the pair of sandboxes, run by a helper process (so their
// CPU is not counted as zsync's), with clients wired as cmd/zsync's
// newSyncer wires them: the Redis tenant limiter on Zuora, the Redis index
// on Limio.
type upstreams struct {
	ch           *child
	zuora, limio string // the sandboxes' base URLs
	keys         []string
	s            *syncer.Syncer
}

// newUpstreams starts both sandboxes in a helper process with subs seeded
// subscriptions; the Zuora tenant and zsync's limiter both allow limit
// concurrent requests.
func newUpstreams(b testing.TB, rdb redis.UniversalClient, subs, limit int, log *zap.Logger) *upstreams {
	b.Helper()
	u := &upstreams{ch: startChild(b)}
	var urls sandboxesResp
	u.ch.call(b, "/sandboxes", sandboxesReq{Subs: subs, Limit: limit}, &urls)
	u.zuora, u.limio = urls.Zuora, urls.Limio
	for i := range subs {
		u.keys = append(u.keys, subNumber(i))
	}
	limiter := zuora.NewTenantLimiter(rdb, zuora.LimitConfig{Concurrency: limit, Lease: zuora.DefaultTimeout + 10*time.Second})
	zc, err := zuora.New(zuoraConfig(u.zuora), zuora.WithLimiter(limiter))
	if err != nil {
		b.Fatal(err)
	}
	lc, err := limio.New(limio.Config{BaseURL: u.limio, ClientID: "sandbox", ClientSecret: "sandbox"},
		limio.WithIndex(limio.NewRedisIndex(rdb, "")))
	if err != nil {
		b.Fatal(err)
	}
	u.s = syncer.New(syncer.Config{}, zc, lc, log)
	return u
}

func (u *upstreams) counts(b testing.TB) childCounts {
	var c childCounts
	u.ch.call(b, "/counts", struct{}{}, &c)
	return c
}

// setLatency makes every Zuora /v1/ and Limio /api/ call take d.
func (u *upstreams) setLatency(b testing.TB, d time.Duration) {
	u.ch.call(b, "/latency", struct{ MS int }{int(d / time.Millisecond)}, nil)
}

// bump flips autoRenew of subscriptions [from, from+n) in Zuora.
func (u *upstreams) bump(b testing.TB, from, n int) {
	u.ch.call(b, "/bump", struct{ From, N int }{from, n}, nil)
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
