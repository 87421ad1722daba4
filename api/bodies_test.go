package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/zsync/zsync/syncer"
)

func basicConfig() Config {
	return Config{CalloutUsername: calloutUser, CalloutPassword: calloutPass, OperatorToken: opToken,
		IntegrationUserIDs: []string{"2c92c0f8integration"}, IntegrationUserNames: []string{"limio-integration@example.com"}}
}

func (l *liveIngress) post(t *testing.T, path, ct, body string) answer {
	t.Helper()
	r := newReq(t, http.MethodPost, l.URL+path, ct, body, nil)
	r.SetBasicAuth(calloutUser, calloutPass)
	return send(t, r)
}

// Limio's own Zuora webhook, re-pointed at zsync: same path, same body.
func TestLimioWebhook(t *testing.T) {
	t.Parallel()
	l := startLive(t, basicConfig(), liveOpts{})
	a := l.post(t, LimioEventsPath, "application/json",
		`{"subscriptionID":"A-S00012345","type":"RenewSubscription","data":{"renewalTerm":12,"renewalTermPeriodType":"Month"}}`)
	if a.code != http.StatusOK || a.body["success"] != true || a.body["subscription"] != "A-S00012345" {
		t.Fatalf("webhook: %d %s", a.code, a.raw)
	}
	if trig := l.queued(t)["A-S00012345"]; trig.EventType != "RenewSubscription" || trig.Source != syncer.SourceCallout {
		t.Fatalf("queued trigger %+v", trig)
	}
	// A Limio id is a key too, and then the answer carries Limio's id.
	a = l.post(t, LimioEventsPath, "application/json", `{"subscriptionID":"sub-5c3d0a1b2c3d4e5f","type":"CancelSubscription"}`)
	if a.code != http.StatusOK || a.body["id"] != "sub-5c3d0a1b2c3d4e5f" {
		t.Fatalf("webhook with a Limio id: %d %s", a.code, a.raw)
	}

	for name, c := range map[string]struct {
		body, reason, msg string
	}{
		"zuora internal id": {`{"subscriptionID":"8a8082c45c5f7a5f015c6f6ad2d52c12","type":"RenewSubscription"}`, reasonInternalID, "is not a subscription number"},
		"no id":             {`{"type":"RenewSubscription","data":{}}`, reasonNoSubscription, "looked for subscriptionNumber"},
		"not json":          {`subscriptionID`, reasonMalformed, "malformed"},
	} {
		a := l.post(t, LimioEventsPath, "application/json", c.body)
		if a.code != http.StatusBadRequest || !strings.Contains(a.raw, c.msg) || l.refusals.get(c.reason) == 0 {
			t.Errorf("%s: %d %s (refusals %v)", name, a.code, a.raw, l.refusals.m)
		}
	}
	if keys := l.queuedKeys(t); len(keys) != 2 {
		t.Fatalf("queued %v", keys)
	}
}

// Bodies written with Zuora's "Insert Merge Fields" button join object and
// field names; the loop guard sees the order number, creator and sources
// whatever the style.
func TestMergeFieldBodies(t *testing.T) {
	t.Parallel()
	l := startLive(t, basicConfig(), liveOpts{})
	tests := []struct {
		name, path, ct, body string
		key                  string
		want                 syncer.Trigger // compared on the body fields
		skipped              bool
	}{
		{
			name: "order action merge fields", path: "/v1/callouts/zuora", ct: "application/json",
			body: `{"SubscriptionName":"A-S00000101","OrderOrderNumber":"O-00000042","OrderActionType":"RenewSubscription",` +
				`"OrderActionCreatedById":"2c92c0f8csr","OrderSource__c":"billing-ops","OrderInitiatedSource__c":"zuora-ui","AccountAccountNumber":"A00000001"}`,
			key:  "A-S00000101",
			want: syncer.Trigger{EventType: "RenewSubscription", OrderNumber: "O-00000042", CreatedByID: "2c92c0f8csr", OrderSource: "billing-ops", InitiatedSource: "zuora-ui"},
		},
		{
			name: "order creator", path: "/v1/callouts/zuora", ct: "application/json",
			body: `{"SubscriptionName":"A-S00000102","OrderOrderNumber":"O-00000043","OrderCreatedById":"2c92c0f8csr2"}`,
			key:  "A-S00000102",
			want: syncer.Trigger{OrderNumber: "O-00000043", CreatedByID: "2c92c0f8csr2"},
		},
		{
			name: "initiated source from Limio", path: "/v1/callouts/zuora", ct: "application/json",
			body: `{"SubscriptionName":"A-S00000103","OrderInitiatedSource__c":"shop"}`,
			key:  "A-S00000103", skipped: true,
		},
		{
			name: "creator id of the integration user", path: limioPath + "A-S00000104", ct: "application/json",
			body: `{"SubscriptionName":"A-S00000104","OrderActionCreatedById":"2c92c0f8integration"}`,
			key:  "A-S00000104", skipped: true,
		},
		{
			name: "legacy creator as e-mail", path: "/v1/callouts/zuora", ct: "application/xml",
			body: `<callout><parameter name="SubscriptionNumber">A-S00000105</parameter><parameter name="CreatedBy">Limio-Integration@example.com</parameter></callout>`,
			key:  "A-S00000105", skipped: true,
		},
		{
			name: "legacy creator, another user", path: "/v1/callouts/zuora", ct: "application/xml",
			body: `<callout><parameter name="SubscriptionNumber">A-S00000106</parameter><parameter name="CreatedBy">jane@example.com</parameter></callout>`,
			key:  "A-S00000106",
			want: syncer.Trigger{CreatedByID: "jane@example.com"},
		},
	}
	for _, tt := range tests {
		a := l.post(t, tt.path, tt.ct, tt.body)
		if a.code != http.StatusOK || a.body["subscription"] != tt.key {
			t.Fatalf("%s: %d %s", tt.name, a.code, a.raw)
		}
		if skipped := a.body["status"] == "skipped"; skipped != tt.skipped {
			t.Errorf("%s: status %v; want skipped %v", tt.name, a.body["status"], tt.skipped)
		}
	}
	queued := l.queued(t)
	for _, tt := range tests {
		got, ok := queued[tt.key]
		if tt.skipped {
			if ok {
				t.Errorf("%s: a loop-guarded callout was queued", tt.name)
			}
			continue
		}
		got.Source, got.NotificationID, got.Received = "", "", tt.want.Received
		if got != tt.want {
			t.Errorf("%s: trigger %+v; want %+v", tt.name, got, tt.want)
		}
	}
}

// A callout zsync can't use is a 400 saying what was looked for, counted
// by reason; nothing is queued.
func TestUnusableCalloutsRefused(t *testing.T) {
	t.Parallel()
	l := startLive(t, basicConfig(), liveOpts{})
	for name, c := range map[string]struct {
		ct, body, reason, msg string
		code                  int
	}{
		"bad account":  {"application/json", `{"AccountAccountNumber":"A0/../1"}`, reasonInvalidID, "invalid account", 400},
		"unknown keys": {"application/json", `{"foo":"bar","Invoice":"INV-1"}`, reasonNoSubscription, "looked for subscriptionNumber", 400},
		"empty body":   {"application/json", ``, reasonNoSubscription, "looked for", 400},
		"bad id":       {"application/json", `{"SubscriptionName":"../../etc"}`, reasonInvalidID, "invalid subscription id", 400},
		"bad order":    {"application/json", `{"SubscriptionName":"A-S1","OrderOrderNumber":"O 1; drop"}`, reasonInvalidOrder, "invalid order number", 400},
		"csv":          {"text/csv", `a,b`, reasonMediaType, "unsupported content type", 415},
	} {
		before := l.refusals.get(c.reason)
		a := l.post(t, "/v1/callouts/zuora", c.ct, c.body)
		if a.code != c.code || a.body["success"] != false || !strings.Contains(a.raw, c.msg) {
			t.Errorf("%s: %d %s", name, a.code, a.raw)
		}
		if got := l.refusals.get(c.reason) - before; got != 1 {
			t.Errorf("%s: %d more refusals[%s]; want 1", name, got, c.reason)
		}
	}
	if keys := l.queuedKeys(t); len(keys) != 0 {
		t.Fatalf("queued %v", keys)
	}
}

// On Limio's paths the answer carries Limio's id when zsync knows it
// without I/O (the key is the Limio id); never on zsync's own path.
func TestAnswersCarryLimioID(t *testing.T) {
	t.Parallel()
	l := startLive(t, basicConfig(), liveOpts{})
	for _, c := range []struct {
		path, body, id string
	}{
		{limioPath + "sub-5c3d0a1b2c3d4e5f", "", "sub-5c3d0a1b2c3d4e5f"},
		{limioPath + "A-S00000271", "", ""},
		{"/v1/callouts/zuora", `{"subscriptionNumber":"sub-0a1b2c3d4e5f6a7b"}`, ""},
		{limioPath + "sub-9c3d0a1b2c3d4e5f", `{"OrderInitiatedSource__c":"shop"}`, "sub-9c3d0a1b2c3d4e5f"}, // loop-guarded
	} {
		a := l.post(t, c.path, "application/json", c.body)
		id, _ := a.body["id"].(string)
		if a.code != http.StatusOK || a.body["success"] != true || id != c.id {
			t.Errorf("%s: %d %s; want id %q", c.path, a.code, a.raw, c.id)
		}
		if _, has := a.body["owner"]; has {
			t.Errorf("%s: owner answered, but the ingress never knows it", c.path)
		}
	}
}

// An account-only body on /v1/callouts/zuora (an Account or Contact event)
// stores the account's fan-out task in Redis, answered with the account;
// on Limio's webhook, which documents a subscription, it is refused.
func TestAccountOnlyCallouts(t *testing.T) {
	t.Parallel()
	l := startLive(t, basicConfig(), liveOpts{})
	body := `{"AccountAccountNumber":"A00000001","AccountId":"2c92a0f9","EventType":"ContactUpdated"}`
	a := l.post(t, "/v1/callouts/zuora", "application/json", body)
	if a.code != http.StatusOK || a.body["account"] != "A00000001" || a.body["task_id"] != "account:A00000001:0" {
		t.Fatalf("account callout: %d %s", a.code, a.raw)
	}
	if trig, ok := l.queued(t)["account:A00000001"]; !ok || trig.EventType != "ContactUpdated" {
		t.Fatalf("queued %v; want the account's fan-out", l.queuedKeys(t))
	}
	// An id alone works too; a number wins over an id.
	if a := l.post(t, "/v1/callouts/zuora", "application/x-www-form-urlencoded", "accountId=2c92a0f90000"); a.code != http.StatusOK || a.body["account"] != "2c92a0f90000" {
		t.Fatalf("account id callout: %d %s", a.code, a.raw)
	}
	before := l.refusals.get(reasonAccountOnly)
	if a := l.post(t, LimioEventsPath, "application/json", body); a.code != http.StatusBadRequest || !strings.Contains(a.raw, "/v1/callouts/zuora") {
		t.Fatalf("account body on Limio's webhook: %d %s", a.code, a.raw)
	}
	if got := l.refusals.get(reasonAccountOnly) - before; got != 1 {
		t.Errorf("refusals[%s] += %d; want 1", reasonAccountOnly, got)
	}
}
