package syncer

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/internal/zuoraspec"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// specExample is the first documented 200 example of an operation.
func specExample(t *testing.T, method, template string) []byte {
	t.Helper()
	spec, err := zuoraspec.Load()
	if err != nil {
		t.Fatal(err)
	}
	ex, err := spec.Examples(method, template)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ex {
		if e.Status == http.StatusOK {
			return e.Body
		}
	}
	t.Fatalf("%s %s: no 200 example", method, template)
	return nil
}

// TestPlanOfDocumentedExamples: Zuora's documented subscription and account
// examples, served as is by the sandbox and read by the client through the
// contract check, plan the Limio subscription they describe.
func TestPlanOfDocumentedExamples(t *testing.T) {
	t.Parallel()
	const id, secret = "b64e42ba-7e1a-4bc6-9146-5e1b420306b5", "dOFENLWU193EEoEsWjPZrcjLKVr5OrN1H"
	srv := zuoratest.NewServer(t, zuoratest.WithCredentials(id, secret))
	err := srv.Seed(fstest.MapFS{
		"subscriptions/x.json": {Data: specExample(t, "GET", "/v1/subscriptions/{subscription-key}")},
		"accounts/x.json":      {Data: specExample(t, "GET", "/v1/accounts/{account-key}")},
	})
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := zuoraspec.Client(t)
	c, err := zuora.New(srv.Config(), zuora.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sub, err := c.GetSubscription(ctx, "A-S00007412")
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.GetAccount(ctx, "A00000001")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2017, 6, 1, 9, 0, 0, 0, time.UTC)
	cs, err := Plan(Config{}, ZuoraState{Subscription: sub, Account: acc}, LimioState{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Result != Created {
		t.Fatalf("result %s; want created", cs.Result)
	}
	var got []string
	for _, ch := range cs.Changes {
		got = append(got, ch.Op+" "+ch.Object+" "+ch.Field+" = "+ch.New)
	}
	// The account example's contacts carry names and an e-mail but no
	// address: no address is created.
	want := []string{
		"create customer data.firstName = Test",
		"create customer data.lastName = Test",
		"create customer data.name = Test Test",
		"create customer data.email = contact@example.com",
		"create subscription status = active",
		"create subscription reference = A-S00007412",
		"create subscription customer = " + cs.Changes[0].ID,
		"create subscription data.termStartDate = 2017-01-01",
		"create subscription data.termEndDate = 2018-01-01",
		"create subscription data.attributes.autoRenew = true",
		"create subscription data.zuora.subscriptionNumber = A-S00007412",
		"create subscription data.zuora.subscriptionId = 8a8082c45aa81b51015ad68743ec0fdb",
		"create subscription data.zuora.accountNumber = A00002641",
		"create subscription data.zuora.version = 1",
		"create subscription data.createdBySync = true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A Zuora answer with a value of neither the declared nor the example form
// fails the sync permanently, naming the field, before anything is written
// to Limio.
func TestNeitherFormFailsTheSyncBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	sb := newSandboxes(t, "limio_unknown")
	b, err := json.Marshal(sb.fx.z.Account)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["billingAndPayment"].(map[string]any)["billCycleDay"] = map[string]any{"day": 1}
	b, _ = json.Marshal(doc)
	sb.zs.AddFault(sandbox.Fault{Method: http.MethodGet, Path: "/v1/accounts/", Status: http.StatusOK, Body: string(b)})
	// Not retryable: the worker archives the task and records it failed.
	_, err = sb.s.Sync(t.Context(), number, manual)
	if err == nil || upstream.IsRetryable(err) || !strings.Contains(err.Error(), "billingAndPayment.billCycleDay") {
		t.Fatalf("Sync error = %v; want a permanent error naming billingAndPayment.billCycleDay", err)
	}
	if n := sb.limioWrites(); n != 0 {
		t.Errorf("%d Limio writes; want none", n)
	}
}
