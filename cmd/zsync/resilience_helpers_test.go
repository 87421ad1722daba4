package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// Shared by the resilience tests (resilience_*_test.go): a generator of Zuora
// subscriptions, the environment a zsync process needs to reach a Redis and
// both sandboxes, a reference "clean sync" to compare Limio against, and
// invariant checks on the Limio sandbox.

// subState is what a test changes about a generated subscription.
type subState struct {
	Rev       int    // Zuora version - 1; every rev is a new version id
	Price     string // of the one monthly charge
	City      string // of both contacts
	AutoRenew bool
	Cancelled bool
	Months    int // term length (a renewal extends it)
}

func initialState() subState {
	return subState{Price: "20.00", City: "London", AutoRenew: true, Months: 4}
}

func subNumber(i int) string { return fmt.Sprintf("A-S%08d", 700000+i) }

// termStart is the first day of next month: every generated charge is in the
// future, whenever the test runs.
func termStart() time.Time {
	now := time.Now().UTC()
	return time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

// genSub builds subscription i in state st, from the dev seed's A-S00000201
// (the API's own JSON shape), with its own account so billing previews don't
// mix subscriptions.
func genSub(t testing.TB, i int, st subState) (zuora.Subscription, zuora.Account) {
	t.Helper()
	var sub zuora.Subscription
	var acct zuora.Account
	for path, dst := range map[string]any{
		"seed/zuora/subscriptions/A-S00000201.json": &sub,
		"seed/zuora/accounts/A00000201.json":        &acct,
	} {
		b, err := fs.ReadFile(devSeed, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	start := termStart()
	end := start.AddDate(0, st.Months, 0)
	number, acctNo := subNumber(i), fmt.Sprintf("A%08d", 700000+i)
	sub.SubscriptionNumber = number
	sub.ID = fmt.Sprintf("8ad7%06dv%03d", i, st.Rev)
	sub.Version = zuora.Int(st.Rev + 1)
	sub.AccountID, sub.AccountNumber, sub.AccountName, sub.InvoiceOwnerAccountNumber = "8ad0"+acctNo, acctNo, acctNo, acctNo
	sub.ContractEffectiveDate, sub.ServiceActivationDate, sub.CustomerAcceptanceDate = fmtDay(start), fmtDay(start), fmtDay(start)
	sub.SubscriptionStartDate, sub.TermStartDate = fmtDay(start), fmtDay(start)
	sub.TermEndDate, sub.SubscriptionEndDate = fmtDay(end), fmtDay(end)
	sub.CurrentTerm, sub.InitialTerm = zuora.Int(st.Months), zuora.Int(st.Months)
	sub.AutoRenew = zuora.Bool(st.AutoRenew)
	sub.Status = "Active"
	if st.Cancelled {
		sub.Status = "Cancelled"
		sub.SubscriptionEndDate = fmtDay(start.AddDate(0, 1, 0))
		sub.TermEndDate = sub.SubscriptionEndDate
	}
	sub.OrderNumber = ""
	rp := sub.RatePlans[0]
	c := rp.RatePlanCharges[0]
	c.Number = fmt.Sprintf("C-%08d", 700000+i)
	c.ID, c.OriginalChargeID = "8ad1"+c.Number, "8ad1"+c.Number
	c.Price = zuora.NewAmount(st.Price)
	c.MRR, c.TCV = c.Price, c.Price
	c.EffectiveStartDate, c.EffectiveEndDate = fmtDay(start), sub.SubscriptionEndDate
	c.ChargedThroughDate, c.ProcessedThroughDate = "", ""
	rp.RatePlanCharges = []zuora.Charge{c}
	sub.RatePlans = []zuora.RatePlan{rp}

	acct.BasicInfo.ID, acct.BasicInfo.AccountNumber = "8ad0"+acctNo, acctNo
	acct.BasicInfo.Name = fmt.Sprintf("Customer %d", i)
	bill := *acct.BillToContact
	bill.ID = "2c9" + acctNo
	bill.FirstName, bill.LastName = "Customer", fmt.Sprint(i)
	bill.City = st.City
	bill.WorkEmail = fmt.Sprintf("c%d@example.com", i)
	sold := bill
	acct.BillToContact, acct.SoldToContact = &bill, &sold
	return sub, acct
}

func fmtDay(t time.Time) string { return t.Format(time.DateOnly) }

// putSub stores subscription i in state st in a Zuora sandbox.
func putSub(t testing.TB, zs *zuoratest.Server, i int, st subState) {
	t.Helper()
	sub, acct := genSub(t, i, st)
	if err := zs.PutAccount(acct); err != nil {
		t.Fatal(err)
	}
	if err := zs.PutSubscription(sub); err != nil {
		t.Fatal(err)
	}
}

// upstreamEnv points a zsync process at a Redis and both sandboxes.
func upstreamEnv(rs *redistest.Server, zs *zuoratest.Server, ls *limiotest.Server, extra ...string) []string {
	env := []string{
		"ZSYNC_REDIS_ADDR=" + rs.Addr,
		fmt.Sprintf("ZSYNC_REDIS_DB=%d", rs.DB),
		"ZSYNC_ZUORA_BASE_URL=" + zs.URL,
		"ZSYNC_ZUORA_CLIENT_ID=" + zs.ClientID,
		"ZSYNC_ZUORA_CLIENT_SECRET=" + zs.ClientSecret,
		"ZSYNC_LIMIO_BASE_URL=" + ls.URL,
		"ZSYNC_LIMIO_CLIENT_ID=" + ls.ClientID,
		"ZSYNC_LIMIO_CLIENT_SECRET=" + ls.ClientSecret,
		"ZSYNC_LOG_FORMAT=json",
	}
	return append(env, extra...)
}

// testConfig is the configuration a process would load from upstreamEnv,
// for the parts of a test that run in-process.
func testConfig(t testing.TB, rs *redistest.Server, zs *zuoratest.Server, ls *limiotest.Server) *config.Config {
	t.Helper()
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Redis = config.Redis{Addr: rs.Addr, DB: rs.DB}
	c.Zuora.BaseURL, c.Zuora.ClientID, c.Zuora.ClientSecret = zs.URL, zs.ClientID, zs.ClientSecret
	c.Limio.BaseURL, c.Limio.ClientID, c.Limio.ClientSecret = ls.URL, ls.ClientID, ls.ClientSecret
	if err := c.Validate(config.Need{Upstream: true}); err != nil {
		t.Fatal(err)
	}
	return c
}

// newTestSyncer is the syncer a worker process builds (newSyncer), in-process.
func newTestSyncer(t testing.TB, c *config.Config, rdb redis.UniversalClient, log *zap.Logger) *syncer.Syncer {
	t.Helper()
	s, err := newSyncer(c, rdb, log)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testEnqueuer enqueues the way the ingress does, with the task options c
// gives (retries, timeout).
func testEnqueuer(t testing.TB, c *config.Config, rdb redis.UniversalClient) *worker.Enqueuer {
	t.Helper()
	client := asynq.NewClientFromRedisClient(rdb)
	return worker.NewEnqueuer(rdb, client, workerConfig(c).EnqueueConfig(), zap.NewNop())
}

// reference replays the states of subscriptions on fresh sandboxes, one clean
// in-process sync per state with nothing failing, and returns the Limio
// state each subscription ends in: what the system under test must converge to.
func reference(t *testing.T, states map[int][]subState) map[int]string {
	t.Helper()
	return referenceBy(t, states, limioState)
}

// referenceBy is reference, each end state read by state.
func referenceBy(t *testing.T, states map[int][]subState, state func(testing.TB, *limiotest.Server, int) string) map[int]string {
	t.Helper()
	rs := redistest.Start(t)
	zs, ls := zuoratest.NewServer(t), limiotest.NewServer(t)
	c := testConfig(t, rs, zs, ls)
	s := newTestSyncer(t, c, rs.Client(t), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	out := map[int]string{}
	for i, seq := range states {
		for _, st := range seq {
			putSub(t, zs, i, st)
			if _, err := s.Sync(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceManual}); err != nil {
				t.Fatalf("reference sync of %s at %+v: %v", subNumber(i), st, err)
			}
		}
		out[i] = state(t, ls, i)
	}
	return out
}

// limioState is subscription i's Limio state (the subscription, its customer,
// addresses and schedule) as JSON without the timestamps the sandbox stamps;
// "" when Limio doesn't have it yet.
func limioState(t testing.TB, ls *limiotest.Server, i int) string {
	t.Helper()
	subID := limio.NewID("sub", subNumber(i))
	sub, ok := ls.Subscription(subID)
	if !ok {
		return ""
	}
	cus, _ := ls.Customer(sub.Customer)
	addrs, scheds := ls.Addresses(subID), ls.Schedules(subID)
	sub.Created, sub.Updated, cus.Created, cus.Updated = "", "", "", ""
	for i := range addrs {
		addrs[i].Created, addrs[i].Updated = "", ""
	}
	for i := range scheds {
		scheds[i].Created, scheds[i].Updated = "", ""
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].ID < addrs[j].ID })
	sort.Slice(scheds, func(i, j int) bool { return scheds[i].ID < scheds[j].ID })
	b, err := json.MarshalIndent(map[string]any{"subscription": sub, "customer": cus, "addresses": addrs, "schedules": scheds}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// duplicateRefs lists the schedule references that more than one
// non-cancelled entry of subscription i carries.
func duplicateRefs(ls *limiotest.Server, i int) []string {
	seen := map[string]int{}
	for _, e := range ls.Schedules(limio.NewID("sub", subNumber(i))) {
		if e.Status != limio.StatusCancelled {
			seen[e.Data.Reference]++
		}
	}
	var dups []string
	for ref, n := range seen {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", ref, n))
		}
	}
	sort.Strings(dups)
	return dups
}

// diffStates describes the first subscription that differs from want and
// counts those that do (0: none).
func diffStates(t testing.TB, ls *limiotest.Server, want map[int]string) (string, int) {
	t.Helper()
	var first string
	n := 0
	for i, w := range want {
		if got := limioState(t, ls, i); got != w {
			if n == 0 {
				first = fmt.Sprintf("%s differs:\n%s\nwant\n%s", subNumber(i), got, w)
			}
			n++
		}
	}
	return first, n
}

// converged polls until every subscription's Limio state equals want.
func converged(t *testing.T, ls *limiotest.Server, want map[int]string, within time.Duration) {
	t.Helper()
	var first string
	var n int
	if !waittest.Until(t.Context(), within, func() bool {
		first, n = diffStates(t, ls, want)
		return n == 0
	}) {
		t.Fatalf("Limio did not converge within %v: %d of %d subscriptions differ; %s", within, n, len(want), first)
	}
}

// inspector reads asynq's queues on rs.
func inspector(t testing.TB, rs *redistest.Server) *asynq.Inspector {
	t.Helper()
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB})
	t.Cleanup(func() { _ = in.Close() })
	return in
}

// queueCounts sums a queue's task counts; a queue never used reads as empty.
func queueCounts(t testing.TB, in *asynq.Inspector, queue string) asynq.QueueInfo {
	t.Helper()
	qi, err := in.GetQueueInfo(queue)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "not found") {
			return asynq.QueueInfo{Queue: queue}
		}
		t.Fatalf("queue %s: %v", queue, err)
	}
	return *qi
}

// slowTests skips, under -short, the tests that take tens of seconds (asynq's
// lease recovery, hundreds of syncs under faults).
func slowTests(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow resilience test")
	}
}

// countWrites counts the Limio API writes the sandbox saw.
func countWrites(ls *limiotest.Server) int {
	return ls.Count(http.MethodPut, "/api/") + ls.Count(http.MethodPost, "/api/timeline/")
}
