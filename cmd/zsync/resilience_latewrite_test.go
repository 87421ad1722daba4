package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// TestResilienceLateLimioWrite: a Limio write times out at zsync's client
// (a gateway holds it past limio.timeout) and lands later, while a newer
// Zuora change and its callout arrive. The sandbox, the ingress and the
// worker are separate processes on a real Redis, the periodic sweep is off,
// and the proxy in front of Limio logs every request and holds that one PUT
// until the client has given up.
//
// With worker.write_grace the subscription's lock outlives the failed sync
// by the grace, so the next sync reads Limio only after the late write has
// landed and corrects it: Limio ends at Zuora's last state, no two writes
// of the subscription were ever in flight together, and the last one came
// from a sync that read Zuora after the last change. Without the grace the
// next syncs read Limio at once and finish before the late write lands:
// Limio is left stale, deterministically, until the subscription changes
// again.
func TestResilienceLateLimioWrite(t *testing.T) {
	slowTests(t)
	t.Parallel()
	s1, s2, s3 := initialState(), initialState(), initialState()
	s2.Rev, s2.City, s2.AutoRenew = 1, "Paris", false
	s3.Rev, s3.City, s3.AutoRenew = 2, "Berlin", true
	want := referenceBy(t, map[int][]subState{0: {s1, s3}}, func(t testing.TB, ls *limiotest.Server, i int) string {
		return limioStateAt(t, ls.URL, i)
	})[0]

	t.Run("write_grace holds the next sync back", func(t *testing.T) {
		t.Parallel()
		lw := startLateWrite(t, "5s", s1, s2, s3)
		// The gateway forwards the write 2.5s after zsync's client gave up,
		// within the grace (which starts after that); a Limio request of a
		// later sync meanwhile (the grace not holding it back) has the
		// write forwarded right after it, so that read is caught.
		landed := lw.land(t, 2500*time.Millisecond)
		lw.waitDrained(t)

		if got := limioStateAt(t, lw.limio, 0); got != want {
			t.Errorf("Limio after the late write:\n%s\nwant Zuora's last state\n%s", got, want)
		}
		reqs := lw.proxy.requests()
		if o := overlappingWrites(reqs); len(o) > 0 {
			t.Errorf("two syncs wrote the subscription at once:\n%s", strings.Join(o, "\n"))
		}
		// No sync read or wrote Limio between the timed-out write and its
		// landing: the next one started after it.
		for _, r := range reqs {
			if strings.HasPrefix(r.path, "/api/objects/") && r.arrived.After(landed.arrived) && r.arrived.Before(landed.done) {
				t.Errorf("%s %s at %s, before the late write landed at %s", r.method, r.path,
					r.arrived.Format("15:04:05.000"), landed.done.Format("15:04:05.000"))
			}
		}
		last := lastSubWrite(reqs)
		if v3 := versionID(t, s3); last == nil || !bytes.Contains(last.body, []byte(`"`+v3+`"`)) {
			t.Errorf("the last write of the subscription does not carry Zuora's last version %s: %s", v3, describe(last))
		}
		// The sync that wrote it started (and so read Zuora) after the
		// last callout.
		hist, err := lw.store.History(t.Context(), subNumber(0), 20)
		if err != nil {
			t.Fatal(err)
		}
		var writer *worker.Record
		for k := range hist { // newest first
			if hist[k].Outcome == syncer.Updated {
				writer = &hist[k]
				break
			}
		}
		if writer == nil || !writer.At.After(lw.lastCallout) {
			t.Errorf("the last sync that updated Limio: %+v; want one started after the last callout at %s", writer,
				lw.lastCallout.Format(time.RFC3339Nano))
		}
	})

	t.Run("without write_grace the late write leaves Limio stale", func(t *testing.T) {
		t.Parallel()
		lw := startLateWrite(t, "-1s", s1, s2, s3)
		// The lock is free as soon as the sync fails: the newer callout's
		// task and the failed task's retry read Limio before the late write
		// and finish (one updates, the other finds nothing to do); the late
		// write lands after them, and nothing is left to run.
		lw.waitDrained(t)
		lw.land(t, 0)

		if got := limioStateAt(t, lw.limio, 0); got == want {
			t.Error("Limio is at Zuora's last state although the late write landed after every sync")
		}
		last := lastSubWrite(lw.proxy.requests())
		if v2 := versionID(t, s2); last == nil || !last.lateClient || !bytes.Contains(last.body, []byte(`"`+v2+`"`)) {
			t.Errorf("the last write of the subscription is not the late one of version %s: %s", v2, describe(last))
		}
		if o := overlappingWrites(lw.proxy.requests()); len(o) == 0 {
			t.Error("no overlapping writes: the next sync wrote while the timed-out write was in flight")
		}
	})
}

// lateWrite is one run of the scenario: subscription 0 synced at s1, then
// changed to s2 with a callout whose sync's subscription PUT the proxy
// holds; Zuora changes to s3 and calls out again while it is held; the
// client gives up on the PUT. land forwards it.
type lateWrite struct {
	proxy       *upstreamProxy
	limio       string // the Limio sandbox, behind the proxy
	store       *worker.OutcomeStore
	held        chan *http.Request // the held PUT, once it arrived
	release     func()
	firstTask   string // the task whose PUT is held
	lastTask    string // the newer callout's task
	lastCallout time.Time
	heldRequest *http.Request
	heldAt      time.Time // when the held PUT reached the proxy
}

// sandboxAddrs reads the addresses `zsync sandbox` prints.
var sandboxAddrs = regexp.MustCompile(`zuora sandbox on (http://\S+)\s+limio sandbox on (http://\S+)`)

func startLateWrite(t *testing.T, grace string, s1, s2, s3 subState) *lateWrite {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	lw := &lateWrite{store: worker.NewOutcomeStore(rdb, worker.Config{}.StoreConfig()), held: make(chan *http.Request, 1)}
	// The sandboxes listen on ports the kernel picks, and say which.
	sb := startProc(t, "sandbox", nil, "sandbox", "--zuora-addr", "127.0.0.1:0", "--limio-addr", "127.0.0.1:0")
	var zuoraURL string
	eventually(t, 30*time.Second, "the sandboxes' addresses", func() bool {
		m := sandboxAddrs.FindStringSubmatch(sb.out.String())
		if m == nil {
			return false
		}
		zuoraURL, lw.limio = m[1], m[2]
		return true
	})
	waitHTTP(t, sb, zuoraURL+"/sandbox/requests", 30*time.Second)
	waitHTTP(t, sb, lw.limio+"/sandbox/requests", 30*time.Second)

	lw.proxy = newUpstreamProxy(t, lw.limio)
	release := make(chan struct{})
	var once sync.Once
	lw.release = func() { once.Do(func() { close(release) }) }
	t.Cleanup(lw.release)
	var armed, taken atomic.Bool
	lw.proxy.setHold(func(r *http.Request) <-chan struct{} {
		if armed.Load() && r.Method == http.MethodPut && r.URL.Path == subWritePath(0) && taken.CompareAndSwap(false, true) {
			lw.held <- r
			return release
		}
		return nil
	})

	addr := freeAddr(t)
	base := "http://" + addr
	env := []string{
		"ZSYNC_REDIS_ADDR=" + rs.Addr, fmt.Sprintf("ZSYNC_REDIS_DB=%d", rs.DB),
		"ZSYNC_ZUORA_BASE_URL=" + zuoraURL, "ZSYNC_ZUORA_CLIENT_ID=sandbox", "ZSYNC_ZUORA_CLIENT_SECRET=sandbox",
		"ZSYNC_LIMIO_BASE_URL=" + lw.proxy.URL, "ZSYNC_LIMIO_CLIENT_ID=sandbox", "ZSYNC_LIMIO_CLIENT_SECRET=sandbox",
		"ZSYNC_LOG_FORMAT=json", "ZSYNC_HTTP_ADDR=" + addr,
		"ZSYNC_CALLOUT_USERNAME=" + testCalloutUser, "ZSYNC_CALLOUT_PASSWORD=" + testCalloutPass,
		"ZSYNC_OPERATOR_TOKEN=" + testOperatorTok,
		// A Limio client that gives up after 1s; the lock (extended every
		// third of its TTL) is shorter than the grace, so the grace is what
		// holds it; retries come back quickly.
		"ZSYNC_LIMIO_TIMEOUT=1s", "ZSYNC_WORKER_WRITE_GRACE=" + grace, "ZSYNC_WORKER_LOCK_TTL=2s",
		"ZSYNC_WORKER_RETRY_BASE=50ms", "ZSYNC_WORKER_RETRY_CAP=200ms", "ZSYNC_WORKER_COALESCE_WINDOW=-1s",
	}
	cfgFile := sweepOff(t)
	srv := startProc(t, "serve", env, "serve", "--config", cfgFile)
	waitHTTP(t, srv, base+"/healthz", 30*time.Second)
	startProc(t, "work", env, "work", "--config", cfgFile)

	putSubAt(t, zuoraURL, 0, s1)
	if st, id := postCallout(t, base, subNumber(0)); st != "enqueued" {
		t.Fatalf("first callout: %s %s", st, id)
	}
	lw.waitRecorded(t, "the first sync", func(r worker.Record) bool { return r.Outcome == syncer.Created })

	armed.Store(true)
	putSubAt(t, zuoraURL, 0, s2)
	st, id := postCallout(t, base, subNumber(0))
	if st != "enqueued" {
		t.Fatalf("second callout: %s %s", st, id)
	}
	lw.firstTask = id
	lw.heldRequest = waittest.Recv(t, 30*time.Second, "the subscription's PUT at the proxy", lw.held)
	lw.heldAt = time.Now()

	// The newer change arrives while the write is in flight: its task waits
	// for the lock the held sync has.
	putSubAt(t, zuoraURL, 0, s3)
	lw.lastCallout = time.Now()
	if st, id = postCallout(t, base, subNumber(0)); st != "enqueued" || id == lw.firstTask {
		t.Fatalf("third callout: %s %s; want a task of its own", st, id)
	}
	lw.lastTask = id
	select {
	case <-lw.heldRequest.Context().Done(): // zsync's Limio client gave up
	case <-time.After(30 * time.Second):
		t.Fatal("the Limio client did not give up on the held PUT")
	}
	return lw
}

// land forwards the held PUT after delay, or as soon as a later Limio
// request has been answered, and returns its log entry once the sandbox
// has answered it. The delay is the fault itself: a gateway's queue.
func (lw *lateWrite) land(t *testing.T, delay time.Duration) proxied {
	t.Helper()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-timer.C:
			break wait
		case <-tick.C:
			if lw.laterRequest() {
				break wait
			}
		}
	}
	lw.release()
	var landed proxied
	eventually(t, 30*time.Second, "the held PUT to land", func() bool {
		for _, r := range lw.proxy.requests() {
			if r.lateClient && r.method == http.MethodPut && r.path == subWritePath(0) {
				landed = r
				return true
			}
		}
		return false
	})
	return landed
}

// laterRequest reports whether a Limio object request has been answered
// since the held PUT arrived.
func (lw *lateWrite) laterRequest() bool {
	for _, r := range lw.proxy.requests() {
		if strings.HasPrefix(r.path, "/api/objects/") && r.arrived.After(lw.heldAt) {
			return true
		}
	}
	return false
}

// waitRecorded waits until subscription 0's history holds a record ok accepts.
func (lw *lateWrite) waitRecorded(t *testing.T, what string, ok func(worker.Record) bool) {
	t.Helper()
	eventually(t, 30*time.Second, what+" to be recorded", func() bool {
		hist, err := lw.store.History(t.Context(), subNumber(0), 50)
		if err != nil {
			return false
		}
		for _, r := range hist {
			if ok(r) {
				return true
			}
		}
		return false
	})
}

// waitDrained waits until both tasks have ended: the timed-out one (retried)
// and the newer callout's, each with a recorded success.
func (lw *lateWrite) waitDrained(t *testing.T) {
	t.Helper()
	for _, id := range []string{lw.firstTask, lw.lastTask} {
		lw.waitRecorded(t, "task "+id+"'s success", func(r worker.Record) bool {
			return r.TaskID == id && (r.Outcome == syncer.Updated || r.Outcome == syncer.Unchanged)
		})
	}
}

// putSubAt stores subscription i in state st in a Zuora sandbox process.
func putSubAt(t *testing.T, zuoraURL string, i int, st subState) {
	t.Helper()
	sub, acct := genSub(t, i, st)
	for path, v := range map[string]any{
		"/sandbox/accounts/" + acct.BasicInfo.AccountNumber: acct,
		"/sandbox/subscriptions/" + sub.SubscriptionNumber:  sub,
	} {
		putJSON(t, zuoraURL+path, v)
	}
}

// limioStateAt is limioState read from a Limio sandbox's admin endpoints,
// as JSON objects: the subscription, its customer, addresses and schedule
// without the timestamps the sandbox stamps; "" when Limio lacks it.
func limioStateAt(t testing.TB, limioURL string, i int) string {
	t.Helper()
	get := func(path string, v any) bool {
		resp, err := http.Get(limioURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return false
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return true
	}
	subID := limio.NewID("sub", subNumber(i))
	var sub, cus map[string]any
	if !get("/sandbox/objects/"+limio.PathSubscriptions+"/"+subID, &sub) {
		return ""
	}
	if id, _ := sub["customer"].(string); id != "" {
		get("/sandbox/objects/"+limio.PathCustomers+"/"+id, &cus)
	}
	var related struct{ Items []map[string]any }
	get("/sandbox/related/"+subID, &related)
	objs := map[string][]map[string]any{}
	for _, o := range related.Items {
		if rt, _ := o["record_type"].(string); rt == limio.RecordAddress || rt == limio.RecordSchedule {
			objs[rt] = append(objs[rt], o)
		}
	}
	for _, os := range objs {
		sort.Slice(os, func(a, b int) bool { return fmt.Sprint(os[a]["id"]) < fmt.Sprint(os[b]["id"]) })
	}
	for _, o := range append(append([]map[string]any{sub, cus}, objs[limio.RecordAddress]...), objs[limio.RecordSchedule]...) {
		delete(o, "created")
		delete(o, "updated")
	}
	b, err := json.MarshalIndent(map[string]any{"subscription": sub, "customer": cus,
		"addresses": objs[limio.RecordAddress], "schedules": objs[limio.RecordSchedule]}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lastSubWrite is the last PUT of subscription 0's own object to land.
func lastSubWrite(reqs []proxied) *proxied {
	var last *proxied
	for k := range reqs {
		r := &reqs[k]
		if r.method == http.MethodPut && r.path == subWritePath(0) && (last == nil || r.done.After(last.done)) {
			last = r
		}
	}
	return last
}

// describe is a write for a failure message.
func describe(r *proxied) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%s %s arrived %s, landed %s, client gone %v: %s", r.method, r.path,
		r.arrived.Format("15:04:05.000"), r.done.Format("15:04:05.000"), r.lateClient, r.body)
}

// versionID is the Zuora version id subscription 0 has in state st, which
// a sync writes into the Limio subscription.
func versionID(t *testing.T, st subState) string {
	t.Helper()
	sub, _ := genSub(t, 0, st)
	return sub.ID
}
