package api

import (
	"crypto/hmac"
	"crypto/md5"  //nolint:gosec // testing Zuora's MD5 option
	"crypto/sha1" //nolint:gosec // testing Zuora's SHA-1 option
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"strings"
	"testing"
)

// zuoraSign computes what Zuora puts in the header: the HMAC of data in
// the output format, placed in the header value where the marker is.
func zuoraSign(newHash func() hash.Hash, secret, format, valueFormat, data string) string {
	m := hmac.New(newHash, []byte(secret))
	m.Write([]byte(data))
	sig := hex.EncodeToString(m.Sum(nil))
	if format == "base64" {
		sig = base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return strings.Replace(valueFormat, signedMarker, sig, 1)
}

// Every algorithm and output format Zuora offers, each with the default
// header value and Zuora's own free-text example, through the real
// ingress into Redis.
func TestHMACEveryAlgorithmAndEncoding(t *testing.T) {
	t.Parallel()
	algs := []struct {
		name    string // as Zuora's UI spells it
		newHash func() hash.Hash
	}{
		{"MD5", md5.New}, {"SHA-1", sha1.New}, {"SHA-224", sha256.New224},
		{"SHA-256", sha256.New}, {"SHA-384", sha512.New384}, {"SHA-512", sha512.New},
	}
	for _, alg := range algs {
		for _, enc := range []string{"hex", "base64"} {
			for _, vf := range []string{"", "The algorithm is " + alg.name + " and the signed data is {{Request.HMAC.Signed}}"} {
				t.Run(alg.name+"/"+enc+"/"+map[bool]string{true: "plain", false: "text"}[vf == ""], func(t *testing.T) {
					t.Parallel()
					cfg := Config{HMACSecret: hmacSecret, HMACAlgorithm: alg.name, HMACEncoding: strings.ToUpper(enc),
						HMACHeader: "X-Callout-Signature", HMACValueFormat: vf, OperatorToken: opToken}
					l := startLive(t, cfg, liveOpts{})
					format := vf
					if format == "" {
						format = signedMarker
					}
					post := func(sig, body string) int {
						h := map[string]string{}
						if sig != "" {
							h["X-Callout-Signature"] = sig
						}
						return send(t, newReq(t, http.MethodPost, l.URL+"/v1/callouts/zuora", "application/json", body, h)).code
					}
					body := `{"SubscriptionName":"A-S00000001","OrderActionType":"RenewSubscription"}`
					good := zuoraSign(alg.newHash, hmacSecret, enc, format, body)
					if code := post(good, body); code != http.StatusOK {
						t.Fatalf("good signature %q: %d", good, code)
					}
					other := `{"SubscriptionName":"A-S00000002"}`
					for name, sig := range map[string]string{
						"missing":         "",
						"other body":      zuoraSign(alg.newHash, hmacSecret, enc, format, other),
						"other secret":    zuoraSign(alg.newHash, "another secret", enc, format, body),
						"other algorithm": zuoraSign(map[bool]func() hash.Hash{true: sha256.New, false: md5.New}[alg.name == "MD5"], hmacSecret, enc, format, body),
						"other text":      strings.Replace(good, "signed data", "data", 1) + map[bool]string{true: "x", false: ""}[vf == ""],
						"bare signature":  map[bool]string{true: "", false: zuoraSign(alg.newHash, hmacSecret, enc, signedMarker, body)}[vf == ""],
					} {
						if sig == "" && name != "missing" {
							continue
						}
						if code := post(sig, body); code != http.StatusUnauthorized {
							t.Errorf("%s: %d; want 401", name, code)
						}
					}
					// A signature valid for one body does not carry another.
					if code := post(good, other); code != http.StatusUnauthorized {
						t.Errorf("good signature, other body: %d; want 401", code)
					}
					if got := strings.Join(l.queuedKeys(t), ","); got != "A-S00000001" {
						t.Fatalf("queued %q; want only A-S00000001", got)
					}
					if l.refusals.get(reasonBadSignature) == 0 {
						t.Errorf("bad signatures not counted")
					}
				})
			}
		}
	}
}

// Data may combine request headers and the body, as Zuora documents (the
// way to sign a timestamp along with the body).
func TestHMACDataWithHeaders(t *testing.T) {
	t.Parallel()
	cfg := Config{HMACSecret: hmacSecret, HMACData: "{{Request.Headers.X-Ts}}.{{Request.Body}}", OperatorToken: opToken}
	l := startLive(t, cfg, liveOpts{})
	body := `{"subscriptionNumber":"A-S00000001"}`
	post := func(ts, signedTS string) int {
		sig := zuoraSign(sha256.New, hmacSecret, "hex", signedMarker, signedTS+"."+body)
		return send(t, newReq(t, http.MethodPost, l.URL+"/v1/callouts/zuora", "application/json", body,
			map[string]string{"X-Ts": ts, "X-Zuora-Signature": sig})).code
	}
	if code := post("2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z"); code != http.StatusOK {
		t.Fatalf("signed header and body: %d", code)
	}
	if code := post("2026-03-02T12:00:00Z", "2026-03-01T12:00:00Z"); code != http.StatusUnauthorized {
		t.Fatalf("header changed after signing: %d; want 401", code)
	}
}

// HMAC alone signs the body, not the path: a signed body replayed to
// another id (path or Limio webhook) does not sync that other id.
func TestHMACReplayToAnotherIDRefused(t *testing.T) {
	t.Parallel()
	l := startLive(t, Config{HMACSecret: hmacSecret, OperatorToken: opToken}, liveOpts{})
	post := func(path, body string) answer {
		return send(t, newReq(t, http.MethodPost, l.URL+path, "application/json", body,
			map[string]string{"X-Zuora-Signature": zuoraSign(sha256.New, hmacSecret, "hex", signedMarker, body)}))
	}
	body := `{"subscriptionNumber":"A-S00000001"}`
	if a := post(limioPath+"A-S00000001", body); a.code != http.StatusOK {
		t.Fatalf("matching path: %d %s", a.code, a.raw)
	}
	limioBody := `{"subscriptionID":"A-S00000003","type":"CancelSubscription"}`
	if a := post(limioPath+"A-S00000003", limioBody); a.code != http.StatusOK {
		t.Fatalf("Limio body naming the path's id: %d %s", a.code, a.raw)
	}
	for _, path := range []string{limioPath + "A-S00000002", limioPath + "A-S00000004"} {
		for _, b := range []string{body, limioBody, ""} {
			if a := post(path, b); a.code != http.StatusBadRequest {
				t.Errorf("signed %q replayed to %s: %d; want 400", b, path, a.code)
			}
		}
	}
	if got := strings.Join(l.queuedKeys(t), ","); got != "A-S00000001,A-S00000003" {
		t.Fatalf("queued %q", got)
	}
	if n := l.refusals.get(reasonUnsignedPath); n != 6 {
		t.Errorf("path_not_signed refusals = %d; want 6", n)
	}
}

// A configuration zsync could not verify is refused at start-up, naming
// the setting.
func TestUnverifiableHMACConfigRefused(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Config{
		"data-source field in data": {HMACSecret: hmacSecret, HMACData: "{{DataSource.Account.Id}}{{Request.Body}}"},
		"legacy field in data":      {HMACSecret: hmacSecret, HMACData: "<Event.Timestamp>{{Request.Body}}"},
		"merge field in value":      {HMACSecret: hmacSecret, HMACValueFormat: "{{Request.Headers.X-Ts}} {{Request.HMAC.Signed}}"},
		"no signature in value":     {HMACSecret: hmacSecret, HMACValueFormat: "signed"},
		"unknown algorithm":         {HMACSecret: hmacSecret, HMACAlgorithm: "SHA3-256"},
	} {
		c.OperatorToken = opToken
		_, err := New(c, Deps{Enqueuer: &fakeEnqueuer{}, Outcomes: &fakeOutcomes{}}, nil)
		if err == nil || !strings.Contains(err.Error(), "HMAC") {
			t.Errorf("%s: New() = %v; want an error naming the HMAC setting", name, err)
		}
	}
}
