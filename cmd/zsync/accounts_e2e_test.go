package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/zsync/zsync/limio"
)

// seedJSON reads a dev seed file as a map, to put variants of it.
func seedJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "success")
	return m
}

// putAccount seeds Zuora account number (id idOf(number)) with a bill-to at
// address1 and email.
func (s *stack) putAccount(t *testing.T, number, address1, email string) {
	t.Helper()
	acc := seedJSON(t, "seed/zuora/accounts/A00000203.json")
	bi := acc["basicInfo"].(map[string]any)
	bi["accountNumber"], bi["id"], bi["name"] = number, "8ad0"+number, "Account "+number
	bill := acc["billToContact"].(map[string]any)
	bill["id"], bill["address1"], bill["workEmail"] = "2c9bill"+number, address1, email
	if sold, ok := acc["soldToContact"].(map[string]any); ok {
		sold["id"] = "2c9sold" + number
	}
	s.putZuora(t, "/sandbox/accounts/"+number, acc)
}

// putSubscriptionOf seeds subscription number on account.
func (s *stack) putSubscriptionOf(t *testing.T, number, account string) {
	t.Helper()
	sub := seedJSON(t, "seed/zuora/subscriptions/A-S00000203.json")
	sub["subscriptionNumber"], sub["id"] = number, "8ad"+number[3:]
	sub["accountNumber"], sub["accountId"], sub["accountName"], sub["invoiceOwnerAccountNumber"] = account, "8ad0"+account, account, account
	s.putZuora(t, "/sandbox/subscriptions/"+number, sub)
}

// accountCallout posts an account-level callout with the body Zuora's
// "Insert Merge Fields" writes for the Account data source.
func (s *stack) accountCallout(t *testing.T, account string) map[string]any {
	t.Helper()
	body := fmt.Sprintf(`{"AccountAccountNumber":%q,"AccountId":"8ad0%s","EventType":"ContactUpdated"}`, account, account)
	req, _ := http.NewRequest(http.MethodPost, s.ingress+"/v1/callouts/zuora", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(e2eCalloutUser, e2eCalloutPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK || out["success"] != true || out["account"] != account {
		t.Fatalf("account callout: %d %v", resp.StatusCode, out)
	}
	return out
}

// billing is the Limio billing address of a subscription zsync created.
func (s *stack) billing(t *testing.T, number string) map[string]any {
	t.Helper()
	return s.limioObject(t, "address", limio.NewID("address", limio.NewID("sub", number), limio.AddressBilling))
}

// syncsSince counts the recorded runs of number at or after since.
func (s *stack) syncsSince(t *testing.T, number string, since time.Time) int {
	t.Helper()
	_, out := s.operator(t, http.MethodGet, "/v1/subscriptions/"+number+"/sync?n=100")
	// The history holds the runs before the latest one.
	hist, _ := out["history"].([]any)
	if l, ok := out["latest"].(map[string]any); ok {
		hist = append(hist, l)
	}
	n := 0
	for _, h := range hist {
		r, _ := h.(map[string]any)
		at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(r["at"]))
		if !at.Before(since) {
			n++
		}
	}
	return n
}

// TestAccountEditsReachLimio: a bill-to edit on an account with three
// subscriptions, announced by one account-level callout, reaches all three
// Limio subscriptions' billing addresses and the shared customer's e-mail,
// with each subscription synced at most twice; an unknown account is
// recorded not_found under the account; an owner transfer re-links one
// subscription to its new account's customer and leaves the old one as it
// was.
func TestAccountEditsReachLimio(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	const acct, acct2 = "A00000800", "A00000801"
	subs := []string{"A-S00000801", "A-S00000802", "A-S00000803"}
	s.putAccount(t, acct, "1 Old Street", "old@example.org")
	s.putAccount(t, acct2, "9 Other Road", "other@example.org")
	for _, n := range subs {
		s.putSubscriptionOf(t, n, acct)
		s.callout(t, n, "")
	}
	customer := limio.NewID("cus", acct)
	eventually(t, 60*time.Second, "the three subscriptions created in Limio", func() bool {
		for _, n := range subs {
			if dataField(s.billing(t, n), "address1") != "1 Old Street" {
				return false
			}
		}
		return dataField(s.limioObject(t, "customers", customer), "email") == "old@example.org"
	})

	edited := time.Now().UTC()
	s.putAccount(t, acct, "2 New Street", "new@example.org")
	s.accountCallout(t, acct)
	eventually(t, 60*time.Second, "the edit in every billing address and the customer", func() bool {
		for _, n := range subs {
			if dataField(s.billing(t, n), "address1") != "2 New Street" {
				return false
			}
		}
		return dataField(s.limioObject(t, "customers", customer), "email") == "new@example.org"
	})
	eventually(t, 30*time.Second, "the fan-out recorded under the account", func() bool {
		_, out := s.operator(t, http.MethodGet, "/v1/accounts/"+acct+"/sync")
		l, _ := out["latest"].(map[string]any)
		return l["outcome"] == "fanned_out"
	})
	for _, n := range subs {
		if got := s.syncsSince(t, n, edited); got < 1 || got > 2 {
			t.Errorf("%s synced %d times after the edit; want 1 or 2", n, got)
		}
	}

	// An account Zuora doesn't know: not_found, by account.
	s.accountCallout(t, "A00009999")
	eventually(t, 30*time.Second, "the unknown account recorded not_found", func() bool {
		_, out := s.operator(t, http.MethodGet, "/v1/accounts/A00009999/sync")
		l, _ := out["latest"].(map[string]any)
		return l["outcome"] == "not_found"
	})

	// Owner transfer of A-S00000803 to A00000801.
	oldCustomer := s.limioObject(t, "customers", customer)
	s.putSubscriptionOf(t, subs[2], acct2)
	s.callout(t, subs[2], `{"eventType":"OwnerTransfer","subscriptionNumber":"`+subs[2]+`"}`)
	newCustomer := limio.NewID("cus", acct2)
	eventually(t, 60*time.Second, "the transferred subscription re-linked", func() bool {
		sub := s.limioObject(t, "subscriptions", limio.NewID("sub", subs[2]))
		return sub["customer"] == newCustomer && dataField(s.billing(t, subs[2]), "address1") == "9 Other Road"
	})
	if got := dataField(s.limioObject(t, "customers", newCustomer), "email"); got != "other@example.org" {
		t.Errorf("new customer e-mail %v; want the new account's bill-to", got)
	}
	if after := s.limioObject(t, "customers", customer); fmt.Sprint(after["data"]) != fmt.Sprint(oldCustomer["data"]) {
		t.Errorf("the old customer changed: %v → %v", oldCustomer["data"], after["data"])
	}
}

// TestAccountEditWithoutCalloutReachesLimioByTheSweep: the same bill-to edit,
// announced by nothing, is found by the periodic sweep (Zuora's Contact rows
// moved; no subscription did) and reaches every subscription of the account.
func TestAccountEditWithoutCalloutReachesLimioByTheSweep(t *testing.T) {
	t.Parallel()
	s := startStack(t, "ZSYNC_SWEEP_SCHEDULE=@every 1s", "ZSYNC_SWEEP_LOOKBACK=1h", "ZSYNC_SWEEP_OVERLAP=1ms")
	const acct = "A00000810"
	subs := []string{"A-S00000811", "A-S00000812"}
	s.putAccount(t, acct, "1 Old Street", "old@example.org")
	for _, n := range subs {
		s.putSubscriptionOf(t, n, acct)
	}
	eventually(t, 60*time.Second, "the sweep created both subscriptions", func() bool {
		for _, n := range subs {
			if dataField(s.billing(t, n), "address1") != "1 Old Street" {
				return false
			}
		}
		return true
	})
	s.putAccount(t, acct, "3 Swept Lane", "swept@example.org")
	eventually(t, 60*time.Second, "the sweep carried the edit to every billing address", func() bool {
		for _, n := range subs {
			if dataField(s.billing(t, n), "address1") != "3 Swept Lane" {
				return false
			}
		}
		return dataField(s.limioObject(t, "customers", limio.NewID("cus", acct)), "email") == "swept@example.org"
	})
	_, out := s.operator(t, http.MethodGet, "/v1/accounts/"+acct+"/sync")
	l, _ := out["latest"].(map[string]any)
	tr, _ := l["trigger"].(map[string]any)
	if l["outcome"] != "fanned_out" || tr["source"] != "sweep" {
		t.Errorf("account record %v; want a fan-out by the sweep", l)
	}
}
