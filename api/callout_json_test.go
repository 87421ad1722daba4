package api

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"strconv"
	"testing"
)

// The JSON callout body Zuora sends from a template (the ingress bench's body).
func BenchmarkParseCalloutJSON(b *testing.B) {
	body := []byte(`{"subscriptionNumber":"A-S000001234","subscriptionId":"8a80000000000001234","eventType":"SubscriptionUpdated","accountNumber":"A00001234"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseCallout("application/json", body); err != nil {
			b.Fatal(err)
		}
	}
}

// jsonParamsByTree is the plain way to read a flat JSON object (decode to
// map[string]any); jsonParams must answer the same, faster.
func jsonParamsByTree(body []byte) (map[string]string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // data after the object
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		}
	}
	return out, true
}

func FuzzJSONParams(f *testing.F) {
	for _, s := range []string{
		`{"subscriptionNumber":"A-S00000271","Source__c":"shop"}`,
		`{"a":"\u00e9\n","b":1.5e3,"c":true,"d":null,"e":{"x":"y"},"f":[1,"2"],"g":false}`,
		`{"a":"x"} {"b":"y"}`, `{"a":"\xff"}`, `[]`, `null`, `{"a":-0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := jsonParams(body)
		want, ok := jsonParamsByTree(body)
		if (err == nil) != ok {
			t.Fatalf("jsonParams error %v; decoding to a tree ok=%v", err, ok)
		}
		if ok && !maps.Equal(got, want) {
			t.Fatalf("jsonParams = %q; want %q", got, want)
		}
	})
}
