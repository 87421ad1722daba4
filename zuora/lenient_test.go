package zuora_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/zuora"
)

// setPath sets the field at path (arrays stepped through) to v in every
// object it reaches; it reports whether it set any.
func setPath(doc any, path []string, v json.RawMessage) bool {
	switch x := doc.(type) {
	case []any:
		set := false
		for _, e := range x {
			set = setPath(e, path, v) || set
		}
		return set
	case map[string]any:
		if len(path) == 1 {
			x[path[0]] = v
			return true
		}
		if next, ok := x[path[0]]; ok {
			return setPath(next, path[1:], v)
		}
	}
	return false
}

// host is where a class of disagreement is tried: an operation the client
// calls and a field of that class it decodes.
var host = map[string][2]string{
	"decimal":   {"GET /v1/accounts/{account-key}", "metrics.balance"},
	"date-time": {"GET /v1/orders/{orderNumber}", "order.createdDate"},
}

// TestDisagreementsReadBothForms: for every listed disagreement on an
// operation the client calls, the documented example is served with the
// field in its declared form and in its example form, and the client reads
// both alike; a value of neither form is a permanent error naming the field.
func TestDisagreementsReadBothForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	calls := map[string]struct {
		dir, path string
		get       func(*zuora.Client, string) (any, error)
		key       func(map[string]any) string
	}{
		"GET /v1/subscriptions/{subscription-key}": {"subscriptions", "/v1/subscriptions/",
			func(c *zuora.Client, k string) (any, error) { return c.GetSubscription(ctx, k) },
			func(m map[string]any) string { return m["subscriptionNumber"].(string) }},
		"GET /v1/accounts/{account-key}": {"accounts", "/v1/accounts/",
			func(c *zuora.Client, k string) (any, error) { return c.GetAccount(ctx, k) },
			func(m map[string]any) string { return m["basicInfo"].(map[string]any)["accountNumber"].(string) }},
		"GET /v1/orders/{orderNumber}": {"orders", "/v1/orders/",
			func(c *zuora.Client, k string) (any, error) { return c.GetOrder(ctx, k) },
			func(m map[string]any) string { return m["order"].(map[string]any)["orderNumber"].(string) }},
	}
	// decoded lists the fields the client reads: a value of neither form
	// there must fail; elsewhere the client never looks.
	decoded := map[string]bool{"metrics.balance": true, "order.createdDate": true, "billingAndPayment.billCycleDay": true}
	tried := 0
	for _, d := range zuora.Disagreements {
		op, field := d.Op, d.Field
		if d.Format != "" {
			op, field = host[d.Format][0], host[d.Format][1]
		}
		call, ok := calls[op]
		if !ok {
			continue // an operation the client does not call
		}
		tried++
		t.Run(op+" "+field, func(t *testing.T) {
			t.Parallel()
			srv := contractServer(t)
			c := newClient(t, srv.Config())
			example := examples(t, strings.Fields(op)[0], strings.Fields(op)[1])[0]
			serve := func(v string) (any, error) {
				var doc map[string]any
				if err := json.Unmarshal(example, &doc); err != nil {
					t.Fatal(err)
				}
				if !setPath(doc, strings.Split(field, "."), json.RawMessage(v)) {
					t.Fatalf("%s not in the example", field)
				}
				b, _ := json.Marshal(doc)
				if err := srv.Seed(fstest.MapFS{call.dir + "/x.json": {Data: b}}); err != nil {
					t.Fatalf("seed: %v", err)
				}
				return call.get(c, call.key(doc))
			}
			declared, err := serve(d.Declared)
			if err != nil {
				t.Fatalf("declared form %s: %v", d.Declared, err)
			}
			sent, err := serve(d.Example)
			if err != nil {
				t.Fatalf("example form %s: %v", d.Example, err)
			}
			dj, _ := json.Marshal(declared)
			sj, _ := json.Marshal(sent)
			if d.Format != "date-time" && string(dj) != string(sj) {
				t.Errorf("the two forms read differently:\n%s\n%s", dj, sj)
			}
			if !decoded[field] {
				return
			}
			var doc map[string]any
			_ = json.Unmarshal(example, &doc)
			offContract(t, call.path+call.key(doc), "a value of neither form, on purpose")
			// The sandbox refuses to store such a value: serve it as a fault.
			_ = json.Unmarshal(example, &doc)
			setPath(doc, strings.Split(field, "."), json.RawMessage(`{"neither":true}`))
			b, _ := json.Marshal(doc)
			srv.AddFault(sandbox.Fault{Path: call.path, Status: 200, Body: string(b)})
			_, err = call.get(c, call.key(doc))
			var ue *upstream.Error
			last := field[strings.LastIndex(field, ".")+1:]
			if !errors.As(err, &ue) || ue.Kind != upstream.Permanent || !strings.Contains(err.Error(), last) {
				t.Fatalf("neither form: err = %v; want a permanent error naming %s", err, last)
			}
		})
	}
	if tried < 5 {
		t.Errorf("only %d disagreements tried", tried)
	}
}

// Each lenient type reads its declared and its example form and refuses a
// value of neither, as a *json.UnmarshalTypeError (so the decoder names the
// field).
func TestLenientTypesRefuseNeitherForm(t *testing.T) {
	t.Parallel()
	type all struct {
		I zuora.Int      `json:"i"`
		B zuora.Bool     `json:"b"`
		S zuora.String   `json:"s"`
		A zuora.Amount   `json:"a"`
		D zuora.DateTime `json:"d"`
	}
	var both [2]all
	for i, doc := range []string{
		`{"i":"12","b":true,"s":"x7","a":"12.99","d":"2018-12-13T17:21:43+01:00"}`,
		`{"i":12,"b":"true","s":"x7","a":12.99,"d":"2018-12-13 17:21:43"}`,
	} {
		if err := json.Unmarshal([]byte(doc), &both[i]); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
	}
	if both[0].I != 12 || !bool(both[1].B) || !both[0].A.Equal(both[1].A.Decimal) {
		t.Errorf("forms read differently: %+v %+v", both[0], both[1])
	}
	if _, ok := both[1].D.Time(time.UTC); !ok {
		t.Errorf("date-time %q not read", both[1].D)
	}
	for field, v := range map[string]string{"i": `"twelve"`, "b": `"maybe"`, "s": `{"x":1}`, "a": `"12,99"`,
		"d": `"13/12/2018"`} {
		var out all
		err := json.Unmarshal([]byte(`{"`+field+`":`+v+`}`), &out)
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || te.Field != field {
			t.Errorf("%s = %s: err %v; want a type error naming %s", field, v, err, field)
		}
	}
}
