package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSandboxCommand runs `zsync sandbox --seed dev` as a process and talks to
// both sandboxes the way the clients do.
func TestSandboxCommand(t *testing.T) {
	t.Parallel()
	za, la := freeAddr(t), freeAddr(t)
	p := startProc(t, "sandbox", nil, "sandbox", "--seed", "dev", "--zuora-addr", za, "--limio-addr", la)
	waitHTTP(t, p, "http://"+za+"/sandbox/requests", 10*time.Second)
	waitHTTP(t, p, "http://"+la+"/sandbox/requests", 10*time.Second)

	tok := func(base, path, secret string) (string, int) {
		resp, err := http.PostForm(base+path, url.Values{"grant_type": {"client_credentials"},
			"client_id": {"sandbox"}, "client_secret": {secret}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tr)
		return tr.AccessToken, resp.StatusCode
	}
	if _, status := tok("http://"+za, "/oauth/token", "wrong"); status != http.StatusUnauthorized {
		t.Fatalf("zuora token with a wrong secret: %d; want 401", status)
	}
	zt, _ := tok("http://"+za, "/oauth/token", "sandbox")
	lt, _ := tok("http://"+la, "/oauth2/token", "sandbox")

	get := func(u, token string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, sub := get("http://"+za+"/v1/subscriptions/A-S00000202", zt)
	if status != 200 || sub["status"] != "Cancelled" {
		t.Fatalf("seeded Zuora subscription: %d %v", status, sub["status"])
	}
	status, obj := get("http://"+la+"/api/objects/limio/subscriptions/sub-seed00000000000000000000000002", lt)
	if status != 200 || obj["status"] != "active" {
		t.Fatalf("seeded Limio subscription: %d %v", status, obj["status"])
	}
	if status, _ := get("http://"+za+"/v1/subscriptions/A-S00000202", "bogus"); status != http.StatusUnauthorized {
		t.Fatalf("bad token: %d; want 401", status)
	}

	// Fault injection over the admin API.
	resp, err := http.Post("http://"+za+"/sandbox/faults", "application/json",
		strings.NewReader(`{"method":"GET","path":"/v1/subscriptions/","status":503,"count":1,"retry_after_s":2}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("add fault: %v %v", err, resp)
	}
	if status, _ := get("http://"+za+"/v1/subscriptions/A-S00000202", zt); status != 503 {
		t.Fatalf("fault not applied: %d", status)
	}
	if status, _ := get("http://"+za+"/v1/subscriptions/A-S00000202", zt); status != 200 {
		t.Fatalf("fault outlived its count: %d", status)
	}
	p.stop(t, 10*time.Second)
}
