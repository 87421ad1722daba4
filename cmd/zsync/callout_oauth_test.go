package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// TestCalloutOAuthWiring drives a `zsync serve` configured for OAuth 2.0
// the way an operator does it (one client from the environment, a second
// from the file's callout.oauth_clients): both clients get tokens at
// /oauth2/token and the callout with each token is taken.
func TestCalloutOAuthWiring(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	zs := zuoratest.NewServer(t)
	ls := limiotest.NewServer(t)
	file := filepath.Join(t.TempDir(), "zsync.yaml")
	yaml := "callout:\n  oauth_clients:\n    - client_id: workflow\n      client_secret: workflow-secret-0123456789\n      client_secret_previous: workflow-secret-old-012345\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	env := upstreamEnv(rs, zs, ls, "ZSYNC_HTTP_ADDR="+addr,
		"ZSYNC_CALLOUT_OAUTH_CLIENT_ID=zuora", "ZSYNC_CALLOUT_OAUTH_CLIENT_SECRET=zuora-secret-0123456789",
		"ZSYNC_CALLOUT_OAUTH_SIGNING_KEYS=signing-key-0123456789abcdef0123456789", "ZSYNC_OPERATOR_TOKEN="+testOperatorTok)
	srv := startProc(t, "serve", env, "serve", "--config", file)
	waitHTTP(t, srv, base+"/healthz", 30*time.Second)

	for _, c := range [][2]string{{"zuora", "zuora-secret-0123456789"}, {"workflow", "workflow-secret-0123456789"}, {"workflow", "workflow-secret-old-012345"}} {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c[0]}, "client_secret": {c[1]}}
		resp, err := http.Post(base+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || tok.AccessToken == "" || tok.ExpiresIn != 3600 {
			t.Fatalf("token for %s: %d %+v %v", c[0], resp.StatusCode, tok, err)
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/api/plugins/zuora/sync/subscription/"+subNumber(0), nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"success":true`) {
			t.Fatalf("callout with %s's token: %d %s", c[0], resp.StatusCode, b)
		}
	}
}
