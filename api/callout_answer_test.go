package api

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// appendAnswer writes what echo's c.JSON (json.Encoder) writes, whenever
// it says ok, and says ok whenever every string is plain.
func TestAppendAnswerMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	pieces := []string{"", "A-S00000271", "enqueued", "sub-1a2b", "x:y.z_1-2", " ", "<", ">", "&", `"`, `\`, "\n", "\x00", "\x7f", "é", "\u2028", "\xff"}
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		var b strings.Builder
		for range rng.IntN(3) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	for range 5000 {
		a := calloutResponse{Success: rng.IntN(4) != 0, Status: str(), Subscription: str(), Account: str(), TaskID: str(), Reason: str(), ID: str()}
		got, ok := appendAnswer(nil, a)
		plain := true
		for _, s := range []string{a.Status, a.Subscription, a.Account, a.TaskID, a.Reason, a.ID} {
			plain = plain && plainJSON(s)
		}
		if ok != plain {
			t.Fatalf("%+v: ok %v; want %v", a, ok, plain)
		}
		if !ok {
			continue
		}
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want)+"\n" {
			t.Fatalf("%+v:\n got %s\nwant %s", a, got, want)
		}
	}
}

// Through the router: the answer is c.JSON's, ?pretty included.
func TestCalloutAnswerAsEchoWritesIt(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	body := `{"subscriptionNumber":"A-S00000271"}`
	for _, path := range []string{"/v1/callouts/zuora", "/v1/callouts/zuora?pretty"} {
		rec := b.do(t, req{method: http.MethodPost, path: path, ct: "application/json", body: body, user: calloutUser, pass: calloutPass})
		wantStatus(t, rec, http.StatusOK)
		var a calloutResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want, _ := json.Marshal(a)
		if strings.HasSuffix(path, "?pretty") {
			want, _ = json.MarshalIndent(a, "", "  ")
		}
		if got := rec.Body.String(); got != string(want)+"\n" {
			t.Errorf("%s: answer %q; want %q", path, got, want)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		if !a.Success || a.Subscription != "A-S00000271" || a.Status == "" {
			t.Errorf("%s: answer %+v", path, a)
		}
	}
}
