package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	oauthID      = "zuora-callouts"
	oauthSecret  = "client-secret-S3CR3T-0001"
	oauthSecret2 = "client-secret-S3CR3T-0002"
	signKeyOld   = "signing-key-old-S3CR3T-0123456789abcdef"
	signKeyNew   = "signing-key-new-S3CR3T-0123456789abcdef"
	staticToken  = "static-bearer-S3CR3T-0001"
)

func oauthConfig(keys ...string) Config {
	if len(keys) == 0 {
		keys = []string{signKeyNew}
	}
	return Config{
		OAuthClients:     []OAuthClient{{ID: oauthID, Secrets: []string{oauthSecret}}},
		OAuthSigningKeys: keys,
		OperatorToken:    opToken,
	}
}

// zuoraOAuth plays Zuora's OAuth 2.0 callout option as its callout template
// overview documents it: a POST to the provider's Access Token Endpoint with
// the client id and secret in the (form) body; if that fails, the same again
// with the credentials in an Authorization: Basic header; then the callout
// with Authorization: Bearer. Whether Zuora caches the token is not
// documented, so it may (cache: true) or may not; a callout answered 401 is
// retried once with a new token (Zuora retries a failed authentication
// when the template is Retriable).
type zuoraOAuth struct {
	t                      *testing.T
	tokenURL, id, secret   string
	cache                  bool
	token                  string
	tokenRequests, retries int
	// bodyFails makes the first, body-credential attempt fail the way a
	// provider that only reads the header would see it (no credentials).
	bodyFails bool
}

func (z *zuoraOAuth) fetchToken() answer {
	z.t.Helper()
	z.tokenRequests++
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {z.id}, "client_secret": {z.secret}, "scope": {"callouts"}}
	if z.bodyFails {
		form = url.Values{"grant_type": {"client_credentials"}, "scope": {"callouts"}}
	}
	a := send(z.t, newReq(z.t, http.MethodPost, z.tokenURL, "application/x-www-form-urlencoded", form.Encode(), nil))
	if a.code != http.StatusOK {
		z.tokenRequests++
		basic := base64.StdEncoding.EncodeToString([]byte(z.id + ":" + z.secret))
		a = send(z.t, newReq(z.t, http.MethodPost, z.tokenURL, "application/x-www-form-urlencoded",
			url.Values{"grant_type": {"client_credentials"}}.Encode(), map[string]string{"Authorization": "Basic " + basic}))
	}
	if a.code == http.StatusOK {
		z.token, _ = a.body["access_token"].(string)
	}
	return a
}

func (z *zuoraOAuth) callout(u, body string) answer {
	z.t.Helper()
	if z.token == "" || !z.cache {
		if a := z.fetchToken(); a.code != http.StatusOK {
			return a
		}
	}
	do := func() answer {
		return send(z.t, newReq(z.t, http.MethodPost, u, "application/json", body, map[string]string{"Authorization": "Bearer " + z.token}))
	}
	a := do()
	if a.code == http.StatusUnauthorized {
		z.retries++
		if t := z.fetchToken(); t.code != http.StatusOK {
			return t
		}
		a = do()
	}
	return a
}

func TestOAuthTokenExchangeAsZuoraSendsIt(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	l := startLive(t, oauthConfig(), liveOpts{clock: clock})
	z := &zuoraOAuth{t: t, tokenURL: l.URL + TokenPath, id: oauthID, secret: oauthSecret, cache: true}

	tok := z.fetchToken()
	if tok.code != http.StatusOK || tok.body["token_type"] != "Bearer" || tok.body["expires_in"] != float64(3600) || z.token == "" {
		t.Fatalf("token answer %d %s", tok.code, tok.raw)
	}
	if cc := tok.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q; want no-store", cc)
	}
	if z.tokenRequests != 1 {
		t.Fatalf("form-body credentials needed %d token requests; want 1", z.tokenRequests)
	}

	// Callouts on each callout path with the cached token.
	for i, path := range []string{limioPath + "A-S00000001", "/v1/callouts/zuora", LimioEventsPath} {
		body := `{"subscriptionNumber":"A-S00000002"}`
		if path == LimioEventsPath {
			body = `{"subscriptionID":"A-S00000003","type":"RenewSubscription","data":{"renewalTerm":12}}`
		}
		if a := z.callout(l.URL+path, body); a.code != http.StatusOK || a.body["success"] != true {
			t.Fatalf("callout #%d to %s: %d %s", i, path, a.code, a.raw)
		}
	}
	if z.tokenRequests != 1 || z.retries != 0 {
		t.Fatalf("token requests %d, retries %d; want 1, 0 (one cached token)", z.tokenRequests, z.retries)
	}

	// The token expires mid-stream: the next callout is refused 401 with
	// RFC 6750's invalid_token, nothing is enqueued for it, and Zuora's
	// retry with a new token goes through.
	clock.Advance(time.Hour + time.Second)
	before := len(l.queuedKeys(t))
	expired := send(t, newReq(t, http.MethodPost, l.URL+"/v1/callouts/zuora", "application/json", `{"subscriptionNumber":"A-S00000009"}`,
		map[string]string{"Authorization": "Bearer " + z.token}))
	if expired.code != http.StatusUnauthorized || !strings.Contains(expired.header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
		expired.body["error"] != "token expired" {
		t.Fatalf("expired token: %d %q %s", expired.code, expired.header.Get("WWW-Authenticate"), expired.raw)
	}
	if got := len(l.queuedKeys(t)); got != before {
		t.Fatalf("an expired token enqueued a sync")
	}
	if a := z.callout(l.URL+"/v1/callouts/zuora", `{"subscriptionNumber":"A-S00000004"}`); a.code != http.StatusOK {
		t.Fatalf("callout after expiry: %d %s", a.code, a.raw)
	}
	if z.retries != 1 || z.tokenRequests != 2 {
		t.Fatalf("retries %d, token requests %d; want 1, 2", z.retries, z.tokenRequests)
	}
	if got := strings.Join(l.queuedKeys(t), ","); got != "A-S00000001,A-S00000002,A-S00000003,A-S00000004" {
		t.Fatalf("queued %s", got)
	}
	// Both uses of the expired token (the probe above, Zuora's first try).
	if l.refusals.get(reasonExpiredToken) != 2 {
		t.Errorf("expired token refusals = %d; want 2", l.refusals.get(reasonExpiredToken))
	}
}

// Zuora's second attempt carries the credentials in a Basic header; a
// token per callout (no caching) works too.
func TestOAuthBasicHeaderFallbackAndNoCaching(t *testing.T) {
	t.Parallel()
	l := startLive(t, oauthConfig(), liveOpts{})
	z := &zuoraOAuth{t: t, tokenURL: l.URL + TokenPath, id: oauthID, secret: oauthSecret, bodyFails: true}
	for _, id := range []string{"A-S00000001", "A-S00000002"} {
		if a := z.callout(l.URL+limioPath+id, ""); a.code != http.StatusOK {
			t.Fatalf("callout %s: %d %s", id, a.code, a.raw)
		}
	}
	if z.tokenRequests != 4 {
		t.Fatalf("token requests = %d; want 4 (body fails, header works, per callout)", z.tokenRequests)
	}
	// RFC 6749 §2.3.1 form-encodes the credentials inside the header.
	cfg := oauthConfig()
	cfg.OAuthClients = []OAuthClient{{ID: "zuora:eu", Secrets: []string{"secret with spaces+plus"}}}
	l2 := startLive(t, cfg, liveOpts{})
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape("zuora:eu") + ":" + url.QueryEscape("secret with spaces+plus")))
	a := send(t, newReq(t, http.MethodPost, l2.URL+TokenPath, "application/x-www-form-urlencoded", "grant_type=client_credentials",
		map[string]string{"Authorization": "Basic " + basic}))
	if a.code != http.StatusOK {
		t.Fatalf("form-encoded Basic credentials: %d %s", a.code, a.raw)
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	l := startLive(t, oauthConfig(), liveOpts{})
	u := l.URL + TokenPath
	form := "application/x-www-form-urlencoded"
	basic := func(id, sec string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+sec))}
	}
	tests := []struct {
		name, ct, body string
		header         map[string]string
		code           int
		oauthErr       string
	}{
		{"wrong secret", form, tokenForm(oauthID, "wrong-secret-000000"), nil, 401, "invalid_client"},
		{"unknown client", form, tokenForm("nobody", oauthSecret), nil, 401, "invalid_client"},
		{"no credentials", form, "grant_type=client_credentials", nil, 401, "invalid_client"},
		{"wrong secret in header", form, "grant_type=client_credentials", basic(oauthID, "nope"), 401, "invalid_client"},
		{"operator token is no client", form, "grant_type=client_credentials", map[string]string{"Authorization": "Bearer " + opToken}, 401, "invalid_client"},
		{"no grant type", form, "client_id=" + oauthID + "&client_secret=" + oauthSecret, nil, 400, "invalid_request"},
		{"password grant", form, "grant_type=password&client_id=" + oauthID + "&client_secret=" + oauthSecret, nil, 400, "unsupported_grant_type"},
		{"refresh grant", form, "grant_type=refresh_token&refresh_token=x", nil, 400, "unsupported_grant_type"},
		{"json body", "application/json", `{"grant_type":"client_credentials"}`, nil, 400, "invalid_request"},
		{"bad form", form, "grant_type=%zz", nil, 400, "invalid_request"},
	}
	for _, tt := range tests {
		a := send(t, newReq(t, http.MethodPost, u, tt.ct, tt.body, tt.header))
		if a.code != tt.code || a.body["error"] != tt.oauthErr || a.body["access_token"] != nil {
			t.Errorf("%s: %d %s; want %d %s", tt.name, a.code, a.raw, tt.code, tt.oauthErr)
		}
	}
	if a := send(t, newReq(t, http.MethodGet, u, "", "", nil)); a.code != http.StatusMethodNotAllowed {
		t.Errorf("GET token endpoint: %d", a.code)
	}
	if n := l.refusals.get(reasonTokenClient); n != 5 {
		t.Errorf("invalid_client refusals = %d; want 5", n)
	}
}

// Tokens are verified with the signing keys alone: any ingress with the
// same keys takes them (no shared store), a rotation keeps the old key for
// verification only, and removing a key or the client refuses its tokens.
func TestTokenRotationAcrossIngresses(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	old := startLive(t, oauthConfig(signKeyOld), liveOpts{clock: clock})
	z := &zuoraOAuth{t: t, tokenURL: old.URL + TokenPath, id: oauthID, secret: oauthSecret}
	z.fetchToken()
	oldTok := z.token

	rotating := startLive(t, oauthConfig(signKeyNew, signKeyOld), liveOpts{clock: clock})
	z.tokenURL = rotating.URL + TokenPath
	z.fetchToken()
	newTok := z.token

	rotated := startLive(t, oauthConfig(signKeyNew), liveOpts{clock: clock})
	cfg := oauthConfig(signKeyNew, signKeyOld)
	cfg.OAuthClients = []OAuthClient{{ID: "another-client", Secrets: []string{oauthSecret}}}
	clientGone := startLive(t, cfg, liveOpts{clock: clock})

	post := func(l *liveIngress, tok, id string) int {
		return send(t, newReq(t, http.MethodPost, l.URL+limioPath+id, "", "", map[string]string{"Authorization": "Bearer " + tok})).code
	}
	for _, c := range []struct {
		name string
		l    *liveIngress
		tok  string
		want int
	}{
		{"old token, old ingress", old, oldTok, 200},
		{"old token, rotating ingress", rotating, oldTok, 200},
		{"new token, rotating ingress", rotating, newTok, 200},
		{"new token, rotated ingress", rotated, newTok, 200},
		{"old token, rotated ingress", rotated, oldTok, 401},
		{"new token, old ingress", old, newTok, 401},
		{"token of a removed client", clientGone, newTok, 401},
	} {
		if got := post(c.l, c.tok, "A-S00000001"); got != c.want {
			t.Errorf("%s: %d; want %d", c.name, got, c.want)
		}
	}
}

func TestTwoClientSecretsAndClients(t *testing.T) {
	t.Parallel()
	cfg := oauthConfig()
	cfg.OAuthClients = []OAuthClient{
		{ID: oauthID, Secrets: []string{oauthSecret2, oauthSecret}},
		{ID: "workflow", Secrets: []string{"workflow-secret-S3CR3T"}},
	}
	l := startLive(t, cfg, liveOpts{})
	for _, c := range []struct {
		id, secret string
		want       int
	}{
		{oauthID, oauthSecret2, 200},
		{oauthID, oauthSecret, 200},
		{oauthID, "client-secret-S3CR3T-0003", 401},
		{"workflow", "workflow-secret-S3CR3T", 200},
		{"workflow", oauthSecret, 401},
	} {
		a := send(t, newReq(t, http.MethodPost, l.URL+TokenPath, "application/x-www-form-urlencoded", tokenForm(c.id, c.secret), nil))
		if a.code != c.want {
			t.Errorf("%s/%s: %d; want %d", c.id, c.secret, a.code, c.want)
		}
	}
}

// Tokens zsync did not issue, or issued for something else, are refused.
func TestForgedTokensRefused(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	l := startLive(t, oauthConfig(), liveOpts{clock: clock})
	now := clock.Now()
	claims := func(mod func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := jwt.RegisteredClaims{Issuer: tokenIssuer, Subject: oauthID, Audience: jwt.ClaimStrings{tokenAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	signed := func(key string, c jwt.RegisteredClaims, method jwt.SigningMethod) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = keyID(signKeyNew)
		var k any = []byte(key)
		if method == jwt.SigningMethodNone {
			k = jwt.UnsafeAllowNoneSignatureType
		}
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := signed(signKeyNew, claims(nil), jwt.SigningMethodHS256)
	for name, tok := range map[string]string{
		"other key":      signed("some-other-key-0123456789abcdefghijkl", claims(nil), jwt.SigningMethodHS256),
		"alg none":       signed("", claims(nil), jwt.SigningMethodNone),
		"hs512":          signed(signKeyNew, claims(nil), jwt.SigningMethodHS512),
		"other audience": signed(signKeyNew, claims(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"limio"} }), jwt.SigningMethodHS256),
		"other issuer":   signed(signKeyNew, claims(func(c *jwt.RegisteredClaims) { c.Issuer = "limio" }), jwt.SigningMethodHS256),
		"no expiry":      signed(signKeyNew, claims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }), jwt.SigningMethodHS256),
		"unknown client": signed(signKeyNew, claims(func(c *jwt.RegisteredClaims) { c.Subject = "nobody" }), jwt.SigningMethodHS256),
		"tampered":       good[:len(good)-3] + "abc",
		"garbage":        "not.a.token",
		"operator token": opToken,
		"client secret":  oauthSecret,
	} {
		a := send(t, newReq(t, http.MethodPost, l.URL+"/v1/callouts/zuora", "application/json", `{"subscriptionNumber":"A-S1"}`,
			map[string]string{"Authorization": "Bearer " + tok}))
		if a.code != http.StatusUnauthorized || !strings.Contains(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %q", name, a.code, a.header.Get("WWW-Authenticate"))
		}
	}
	// The well-formed one passes: the refusals above are for what they test.
	a := send(t, newReq(t, http.MethodPost, l.URL+"/v1/callouts/zuora", "application/json", `{"subscriptionNumber":"A-S1"}`,
		map[string]string{"Authorization": "Bearer " + good}))
	if a.code != http.StatusOK {
		t.Fatalf("well-formed token: %d %s", a.code, a.raw)
	}
	if keys := l.queuedKeys(t); len(keys) != 1 {
		t.Fatalf("queued %v; want only the good token's", keys)
	}
}

func TestStaticBearerTokens(t *testing.T) {
	t.Parallel()
	l := startLive(t, Config{BearerTokens: []string{staticToken, "static-bearer-S3CR3T-0002"}, OperatorToken: opToken}, liveOpts{})
	post := func(h map[string]string) answer {
		return send(t, newReq(t, http.MethodPost, l.URL+limioPath+"A-S00000001", "", "", h))
	}
	for _, tok := range []string{staticToken, "static-bearer-S3CR3T-0002"} {
		if a := post(map[string]string{"Authorization": "Bearer " + tok}); a.code != 200 {
			t.Fatalf("static token: %d %s", a.code, a.raw)
		}
	}
	for name, h := range map[string]map[string]string{
		"none":   nil,
		"wrong":  {"Authorization": "Bearer static-bearer-S3CR3T-0003"},
		"prefix": {"Authorization": "Bearer " + staticToken[:10]},
		"basic":  {"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("a:"+staticToken))},
	} {
		a := post(h)
		if a.code != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %q", name, a.code, a.header.Get("WWW-Authenticate"))
		}
	}
	// No OAuth clients: no token endpoint.
	if a := send(t, newReq(t, http.MethodPost, l.URL+TokenPath, "application/x-www-form-urlencoded", tokenForm(oauthID, oauthSecret), nil)); a.code != http.StatusNotFound {
		t.Errorf("token endpoint without clients: %d", a.code)
	}
}

// With Basic and OAuth both configured (a migration), either credential
// is taken, and the anonymous first attempt gets both challenges.
func TestBasicAndBearerAlternatives(t *testing.T) {
	t.Parallel()
	cfg := oauthConfig()
	cfg.CalloutUsername, cfg.CalloutPassword = calloutUser, calloutPass
	l := startLive(t, cfg, liveOpts{})
	u := l.URL + limioPath + "A-S00000001"
	anon := send(t, newReq(t, http.MethodPost, u, "", "", nil))
	if got := anon.header.Values("WWW-Authenticate"); anon.code != 401 || len(got) != 2 || got[0] != `Basic realm="zsync"` || got[1] != `Bearer realm="zsync"` {
		t.Fatalf("anonymous: %d %q", anon.code, got)
	}
	r := newReq(t, http.MethodPost, u, "", "", nil)
	r.SetBasicAuth(calloutUser, calloutPass)
	if a := send(t, r); a.code != 200 {
		t.Fatalf("basic: %d", a.code)
	}
	z := &zuoraOAuth{t: t, tokenURL: l.URL + TokenPath, id: oauthID, secret: oauthSecret}
	if a := z.callout(l.URL+limioPath+"A-S00000002", ""); a.code != 200 {
		t.Fatalf("bearer: %d %s", a.code, a.raw)
	}
}

// With OAuth configured, the token endpoint and every callout path still
// need credentials; /healthz stays the only open route.
func TestOAuthKeepsEveryRouteClosed(t *testing.T) {
	t.Parallel()
	cfg := oauthConfig()
	cfg.BearerTokens = []string{staticToken}
	l := startLive(t, cfg, liveOpts{})
	for _, path := range []string{limioPath + "A-S00000001", "/v1/callouts/zuora", LimioEventsPath} {
		for name, h := range map[string]map[string]string{
			"anonymous":      nil,
			"client secret":  {"Authorization": "Bearer " + oauthSecret},
			"operator token": {"Authorization": "Bearer " + opToken},
			"client basic":   {"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(oauthID+":"+oauthSecret))},
		} {
			a := send(t, newReq(t, http.MethodPost, l.URL+path, "application/json", `{"subscriptionNumber":"A-S00000001","subscriptionID":"A-S00000001"}`, h))
			if a.code != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") == "" || a.body["success"] != false {
				t.Errorf("%s %s: %d %s", path, name, a.code, a.raw)
			}
		}
	}
	if a := send(t, newReq(t, http.MethodPost, l.URL+TokenPath, "application/x-www-form-urlencoded", "grant_type=client_credentials", nil)); a.code != http.StatusUnauthorized {
		t.Errorf("anonymous token request: %d", a.code)
	}
	if a := send(t, newReq(t, http.MethodGet, l.URL+"/healthz", "", "", nil)); a.code != http.StatusOK {
		t.Errorf("healthz: %d", a.code)
	}
	if keys := l.queuedKeys(t); len(keys) != 0 {
		t.Fatalf("queued %v without credentials", keys)
	}
}

// The token exchange and bearer callouts log neither the client secret,
// the signing key nor the token.
func TestOAuthSecretsNotLogged(t *testing.T) {
	t.Parallel()
	cfg := oauthConfig()
	cfg.BearerTokens = []string{staticToken}
	b := setup(t, cfg)
	form := "application/x-www-form-urlencoded"
	rec := b.do(t, req{method: http.MethodPost, path: TokenPath, ct: form, body: tokenForm(oauthID, oauthSecret)})
	wantStatus(t, rec, http.StatusOK)
	tok, _ := decode(t, rec)["access_token"].(string)
	b.do(t, req{method: http.MethodPost, path: TokenPath, ct: form, body: tokenForm(oauthID, "x"+oauthSecret)})
	b.do(t, req{method: http.MethodPost, path: TokenPath, ct: form, body: "grant_type=password&password=" + oauthSecret})
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: limioPath + "A-S1", bearer: tok}), http.StatusOK)
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: limioPath + "A-S1", bearer: staticToken}), http.StatusOK)
	b.do(t, req{method: http.MethodPost, path: limioPath + "A-S1", bearer: tok + "x"})
	entries := b.logs.All()
	if len(entries) < 6 {
		t.Fatalf("%d log entries for 6 requests", len(entries))
	}
	for _, e := range entries {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, s := range []string{oauthSecret, signKeyNew, tok, staticToken, strings.Split(tok, ".")[2]} {
			if strings.Contains(line, s) {
				t.Errorf("log line leaks %q: %s", s, line)
			}
		}
	}
}
