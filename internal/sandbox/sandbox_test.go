package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newServer(t *testing.T) (*Base, *httptest.Server) {
	t.Helper()
	b := NewBase("", "")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", b.IssueToken)
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !b.Authorized(r) {
			b.WriteError(w, http.StatusUnauthorized, "bad token")
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	b.RegisterAdmin(mux, nil)
	srv := httptest.NewServer(b.Wrap(mux))
	t.Cleanup(srv.Close)
	return b, srv
}

func token(t *testing.T, srv *httptest.Server, secret string) (string, int) {
	t.Helper()
	resp, err := http.PostForm(srv.URL+"/token", url.Values{"grant_type": {"client_credentials"},
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

func get(t *testing.T, srv *httptest.Server, tok, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestTokensExpireAndCredentialsChecked(t *testing.T) {
	t.Parallel()
	b, srv := newServer(t)
	if _, status := token(t, srv, "nope"); status != http.StatusUnauthorized {
		t.Fatalf("wrong secret: status %d", status)
	}
	tok, status := token(t, srv, "sandbox")
	if status != 200 || tok == "" {
		t.Fatalf("token: %d %q", status, tok)
	}
	if r := get(t, srv, tok, "/v1/things/a"); r.StatusCode != 200 {
		t.Fatalf("valid token refused: %d", r.StatusCode)
	}
	now := time.Now().Add(2 * time.Hour)
	b.SetClock(func() time.Time { return now })
	if r := get(t, srv, tok, "/v1/things/a"); r.StatusCode != 401 {
		t.Fatalf("expired token accepted: %d", r.StatusCode)
	}
}

func TestFaultsCountAndClear(t *testing.T) {
	t.Parallel()
	b, srv := newServer(t)
	tok, _ := token(t, srv, "sandbox")
	body, _ := json.Marshal(Fault{Method: "GET", Path: "/v1/things/", Status: 503, Count: 2, RetryAfterS: 3})
	resp, err := http.Post(srv.URL+"/sandbox/faults", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("add fault: %v %v", err, resp.StatusCode)
	}
	for i := range 2 {
		r := get(t, srv, tok, "/v1/things/a")
		if r.StatusCode != 503 || r.Header.Get("Retry-After") != "3" {
			t.Fatalf("call %d: status %d retry-after %q", i, r.StatusCode, r.Header.Get("Retry-After"))
		}
	}
	if r := get(t, srv, tok, "/v1/things/a"); r.StatusCode != 200 {
		t.Fatalf("fault outlived its count: %d", r.StatusCode)
	}
	if got := b.Count("GET", "/v1/things/"); got != 3 {
		t.Fatalf("Count = %d; want 3", got)
	}
	b.AddFault(Fault{Path: "/v1/", Status: 0, LatencyMS: 50})
	start := time.Now()
	get(t, srv, tok, "/v1/things/b")
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("latency fault not applied")
	}
	req, _ := http.NewRequest("POST", srv.URL+"/sandbox/reset", nil)
	if _, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	if n := len(b.Requests()); n != 0 {
		t.Fatalf("reset left %d counts", n)
	}
	resp, _ = http.Post(srv.URL+"/sandbox/faults", "application/json", strings.NewReader(`{"path":"nope"}`))
	if resp.StatusCode != 400 {
		t.Fatalf("bad fault accepted: %d", resp.StatusCode)
	}
}

// A latency fault sets how long a call takes, the handler's own work
// included: the answer (status, headers, body as the handler wrote them)
// leaves LatencyMS after the request arrived, not LatencyMS plus the work.
// The handler works for the whole latency, so the answer is due as soon as
// it returns; were the latency added to the work it would come a whole
// latency later. The check is on that gap (a second's margin), not on how
// long the call took, which a loaded machine stretches.
func TestLatencyIncludesTheHandlersWork(t *testing.T) {
	t.Parallel()
	const latency = time.Second
	b := NewBase("", "")
	mux := http.NewServeMux()
	var worked atomic.Int64 // when the handler returned, in UnixNano
	mux.HandleFunc("GET /v1/slow", func(w http.ResponseWriter, r *http.Request) {
		// The work: the whole latency. Arrival was before this call, so
		// the fault's deadline has passed when it ends.
		time.Sleep(latency)
		w.Header().Set("X-Work", "done")
		WriteJSON(w, http.StatusCreated, map[string]string{"ok": "yes"})
		worked.Store(time.Now().UnixNano())
	})
	srv := httptest.NewServer(b.Wrap(mux))
	t.Cleanup(srv.Close)
	b.AddFault(Fault{Path: "/v1/", LatencyMS: int(latency / time.Millisecond)})
	resp, err := http.Get(srv.URL + "/v1/slow")
	if err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if gap := answered.Sub(time.Unix(0, worked.Load())); gap >= latency {
		t.Fatalf("answer came %v after the handler's work ended; want at once (the %v latency includes the work)", gap, latency)
	}
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Work") != "done" || body["ok"] != "yes" {
		t.Fatalf("answer not passed through: %d %v %v", resp.StatusCode, resp.Header, body)
	}
}
