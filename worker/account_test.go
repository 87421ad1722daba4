package worker

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/zuora"
)

// putAccountWith stores account number with n subscriptions A-S<acct>-<i>.
func (e *sweepEnv) putAccountWith(t *testing.T, number string, n int) []string {
	t.Helper()
	if err := e.zs.PutAccount(zuora.Account{BasicInfo: zuora.AccountBasicInfo{AccountNumber: number, Name: number}}); err != nil {
		t.Fatal(err)
	}
	var subs []string
	for i := range n {
		s := fmt.Sprintf("A-S%s%03d", number[1:], i)
		if err := e.zs.PutSubscription(zuora.Subscription{SubscriptionNumber: s, AccountNumber: number, Status: "Active"}); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	return subs
}

// startFanout starts a worker "process" that runs syncs (the fake) and
// account fan-outs against the Zuora sandbox.
func (e *sweepEnv) startFanout(t *testing.T, cfg FanoutConfig) {
	t.Helper()
	srv, err := NewServer(e.opt, e.fake, e.store, e.rdb, e.cfg, e.log)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Prefix = e.cfg.Prefix
	srv.Handle(TaskTypeAccount, NewAccountFanout(e.zc, e.enq, e.store, e.rdb, cfg, e.log))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

// allSynced reports whether every one of subs was synced and the queues
// are empty.
func (e *sweepEnv) allSynced(t *testing.T, subs []string) bool {
	t.Helper()
	for _, s := range subs {
		if e.syncs(s) == 0 {
			return false
		}
	}
	return e.drained(t)
}

func (e *sweepEnv) accountRecord(t *testing.T, account string) *Record {
	t.Helper()
	r, err := e.store.Latest(t.Context(), AccountKey(account))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAccountCalloutBurstSyncsEverySubscriptionAtMostTwice: 30 edits of one
// account's contacts in a burst collapse into few fan-outs, and each of its
// three subscriptions is synced at least once after the last edit and at
// most twice in all; another account's subscriptions are untouched.
func TestAccountCalloutBurstSyncsEverySubscriptionAtMostTwice(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	subs := e.putAccountWith(t, "A00000700", 3)
	other := e.putAccountWith(t, "A00000701", 1)
	ctx := t.Context()
	var statuses []EnqueueStatus
	for range 30 {
		st, id, err := e.enq.EnqueueAccount(ctx, "A00000700", syncer.Trigger{Source: syncer.SourceCallout, EventType: "ContactEdit"}, QueueCallouts)
		if err != nil {
			t.Fatal(err)
		}
		if want := "account:A00000700:0"; id != want {
			t.Fatalf("task id %q; want %q (one fan-out per account and epoch)", id, want)
		}
		statuses = append(statuses, st)
	}
	if statuses[0] != Enqueued || statuses[29] != Coalesced {
		t.Fatalf("statuses %v; want the first enqueued and the rest coalesced", statuses)
	}
	e.startFanout(t, FanoutConfig{})
	waitFor(t, 15*time.Second, "every subscription synced", func() bool { return e.allSynced(t, subs) })
	for _, s := range subs {
		if n := e.syncs(s); n > 2 {
			t.Errorf("%s synced %d times; want at most 2", s, n)
		}
		if trig := e.fake.lastTrigger(s); trig.EventType != "ContactEdit" || trig.Source != syncer.SourceCallout {
			t.Errorf("%s synced with trigger %+v; want the callout's", s, trig)
		}
	}
	if n := e.syncs(other[0]); n != 0 {
		t.Errorf("another account's subscription synced %d times", n)
	}
	rec := e.accountRecord(t, "A00000700")
	if rec == nil || rec.Outcome != FannedOut || rec.Key != AccountKey("A00000700") {
		t.Fatalf("account record %+v; want fanned_out", rec)
	}
	// The fan-out closed its epoch: a later edit makes a new fan-out.
	st, id, err := e.enq.EnqueueAccount(ctx, "A00000700", syncer.Trigger{Source: syncer.SourceCallout}, QueueCallouts)
	if err != nil || st != Enqueued || id != "account:A00000700:1" {
		t.Fatalf("later edit: %s %s %v; want a new fan-out task", st, id, err)
	}
}

// TestAccountFanoutOfAnUnknownAccountIsNotFound: recorded as not_found under
// the account, not retried, and nothing synced.
func TestAccountFanoutOfAnUnknownAccountIsNotFound(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	e.startFanout(t, FanoutConfig{})
	if _, _, err := e.enq.EnqueueAccount(t.Context(), "A09999999", syncer.Trigger{Source: syncer.SourceCallout}, QueueCallouts); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the fan-out recorded", func() bool { return e.accountRecord(t, "A09999999") != nil && e.drained(t) })
	rec := e.accountRecord(t, "A09999999")
	if rec.Outcome != syncer.NotFound || rec.Archived {
		t.Fatalf("record %+v; want not_found, not archived", rec)
	}
	if n := e.zs.Count(http.MethodGet, "/v1/subscriptions/accounts/A09999999"); n != 1 {
		t.Errorf("listing asked %d times; want once (not found is not retried)", n)
	}
	if _, _, err := e.enq.EnqueueAccount(t.Context(), "A0/../x", syncer.Trigger{}, QueueCallouts); err == nil {
		t.Error("an invalid account was enqueued")
	}
}

// TestAccountFanoutFailingHalfWayResumes: the listing's second page fails
// once; asynq retries the fan-out, which lists again and finishes: every
// subscription is synced, none more than once per attempt (a retry enqueues
// again what the failed attempt enqueued; those coalesce when not started).
func TestAccountFanoutFailingHalfWayResumes(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	subs := e.putAccountWith(t, "A00000710", 45) // two pages of 40
	e.zs.AddFault(sandbox.Fault{Method: http.MethodGet, Path: "/v1/subscriptions/accounts/A00000710",
		Query: "page=2", Status: http.StatusInternalServerError, Count: 1})
	e.startFanout(t, FanoutConfig{CalloutMax: 10})
	if _, _, err := e.enq.EnqueueAccount(t.Context(), "A00000710", syncer.Trigger{Source: syncer.SourceCallout}, QueueCallouts); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every subscription synced", func() bool { return e.allSynced(t, subs) })
	for _, s := range subs {
		if n := e.syncs(s); n > 2 {
			t.Errorf("%s synced %d times; want at most 2", s, n)
		}
	}
	if rec := e.accountRecord(t, "A00000710"); rec == nil || rec.Outcome != FannedOut || rec.Attempt != 1 {
		t.Fatalf("record %+v; want fanned_out on the retry", rec)
	}
	// The first 10 went at callout priority, the rest to the bulk queue.
	queues := map[string]int{}
	for _, s := range subs {
		if r, _ := e.store.Latest(t.Context(), s); r != nil {
			queues[r.Queue]++
		}
	}
	if queues[QueueCallouts] < 10 || queues[QueueBulk] < 35-10 {
		t.Errorf("queues of the syncs %v; want the first 10 in callouts, the rest in bulk", queues)
	}
}

var _ asynq.Handler = (*AccountFanout)(nil)

func (f *fakeSyncer) lastTrigger(key string) syncer.Trigger {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ts := f.trigs[key]; len(ts) > 0 {
		return ts[len(ts)-1]
	}
	return syncer.Trigger{}
}

// TestSweepFansOutAccountsWhoseContactsChanged: a contact edit moves no
// subscription's UpdatedDate; the sweep still finds the account (through its
// Contact rows) and syncs each of its subscriptions, with no callout at all.
func TestSweepFansOutAccountsWhoseContactsChanged(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	old := time.Now().Add(-3 * time.Hour)
	e.zs.SetClock(func() time.Time { return old })
	subs := e.putAccountWith(t, "A00000720", 3)
	quiet := e.putAccountWith(t, "A00000721", 1)
	e.zs.SetClock(time.Now)
	// Edit the bill-to contact's e-mail now, as an edit in Zuora would.
	acc, err := e.zc.GetAccount(t.Context(), "A00000720")
	if err != nil {
		t.Fatal(err)
	}
	acc.BillToContact = &zuora.Contact{FirstName: "Ada", WorkEmail: "ada.new@example.com"}
	if err := e.zs.PutAccount(*acc); err != nil {
		t.Fatal(err)
	}
	m := &sweepMetrics{}
	sw := e.sweeper(t, SweepConfig{Schedule: "@every 1h", Lookback: time.Hour}, m)
	srv, err := NewServer(e.opt, e.fake, e.store, e.rdb, e.cfg, e.log)
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle(TaskTypeSweep, sw)
	srv.Handle(TaskTypeAccount, NewAccountFanout(e.zc, e.enq, e.store, e.rdb, FanoutConfig{Prefix: e.cfg.Prefix}, e.log))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	client := asynq.NewClient(e.opt)
	t.Cleanup(func() { _ = client.Close() })
	if _, err := sw.Enqueue(t.Context(), client); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the edited account's subscriptions synced", func() bool { return m.ok.Load() == 1 && e.allSynced(t, subs) })
	for _, s := range subs {
		if n, trig := e.syncs(s), e.fake.lastTrigger(s); n > 2 || trig.Source != syncer.SourceSweep {
			t.Errorf("%s: %d syncs, trigger %+v; want at most 2, from the sweep", s, n, trig)
		}
	}
	if n := e.syncs(quiet[0]); n != 0 {
		t.Errorf("an account edited before the lookback was synced %d times", n)
	}
}
