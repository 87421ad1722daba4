package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestKindForStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give int
		want Kind
	}{
		{400, Permanent}, {401, Unauthorized}, {403, Permanent}, {404, NotFound}, {408, Retryable},
		{409, Retryable}, {422, Permanent}, {429, Throttled}, {500, Retryable}, {502, Retryable}, {503, Retryable},
	}
	for _, tt := range tests {
		if got := KindForStatus(tt.give); got != tt.want {
			t.Errorf("KindForStatus(%d) = %v; want %v", tt.give, got, tt.want)
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := parseRetryAfter("7", now); got != 7*time.Second {
		t.Errorf("seconds: got %v", got)
	}
	if got := parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); got != 90*time.Second {
		t.Errorf("http date: got %v", got)
	}
	if got := parseRetryAfter("soon", now); got != 0 {
		t.Errorf("garbage: got %v", got)
	}
}

func TestErrorMatching(t *testing.T) {
	t.Parallel()
	nf := fmt.Errorf("wrapped: %w", &Error{API: "zuora", Kind: NotFound})
	if !errors.Is(nf, ErrNotFound) || IsRetryable(nf) {
		t.Error("not-found error misclassified")
	}
	th := &Error{Kind: Throttled, RetryAfter: 3 * time.Second}
	if !errors.Is(th, ErrThrottled) || !IsRetryable(th) || RetryAfter(th) != 3*time.Second {
		t.Error("throttled error misclassified")
	}
	if IsRetryable(context.Canceled) {
		t.Error("a cancelled context is not retryable")
	}
}

// tokenServer issues tokens and serves /thing, refusing the first token once
// when refuseFirst is set.
func tokenServer(t *testing.T, refuseFirst bool) (*httptest.Server, *atomic.Int32, *atomic.Int32) {
	var issued, calls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("client_secret") != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n := issued.Add(1)
		fmt.Fprintf(w, `{"access_token":"tok%d","expires_in":3600}`, n)
	})
	mux.HandleFunc("GET /thing", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if refuseFirst && r.Header.Get("Authorization") == "Bearer tok1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &issued, &calls
}

func newTestClient(srv *httptest.Server, secret string) *Client {
	return &Client{API: "test", BaseURL: srv.URL, HTTP: srv.Client(),
		Tokens: &TokenSource{API: "test", URL: srv.URL + "/token", ClientID: "id", ClientSecret: secret, HTTP: srv.Client()}}
}

func TestDoRetriesOnceAfter401(t *testing.T) {
	t.Parallel()
	srv, issued, calls := tokenServer(t, true)
	c := newTestClient(srv, "s3cret")
	var out struct{ OK bool }
	if err := c.Do(context.Background(), Request{Method: "GET", Path: "/thing", Op: "GET /thing"}, &out); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if !out.OK || issued.Load() != 2 || calls.Load() != 2 {
		t.Fatalf("ok=%v tokens=%d calls=%d; want true, 2, 2", out.OK, issued.Load(), calls.Load())
	}
	// The fresh token is cached: no further token requests.
	if err := c.Do(context.Background(), Request{Method: "GET", Path: "/thing", Op: "GET /thing"}, nil); err != nil {
		t.Fatal(err)
	}
	if issued.Load() != 2 {
		t.Fatalf("token fetched again: %d", issued.Load())
	}
}

// A 401 that the one fresh token doesn't cure is Unauthorized (the worker
// tries a few more times: credentials may be rotating), after exactly one
// refresh.
func TestDo401AfterRefreshIsUnauthorized(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"access_token":"tok%d","expires_in":3600}`, calls.Load())
	})
	mux.HandleFunc("GET /thing", func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	err := newTestClient(srv, "s3cret").Do(context.Background(), Request{Method: "GET", Path: "/thing", Op: "GET /thing"}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Unauthorized || e.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v; want an unauthorized 401", err)
	}
	if IsRetryable(err) {
		t.Error("IsRetryable(401) = true; the worker decides how often a 401 is tried")
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("calls = %d; want 2 (the first token, then one fresh one)", n)
	}
}

func TestTokenRefusedHidesSecret(t *testing.T) {
	t.Parallel()
	srv, _, calls := tokenServer(t, false)
	c := newTestClient(srv, "wrong-secret-value")
	err := c.Do(context.Background(), Request{Method: "GET", Path: "/thing", Op: "GET /thing"}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Unauthorized || e.StatusCode != 401 {
		t.Fatalf("err = %v; want an unauthorized 401", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") || calls.Load() != 0 {
		t.Fatalf("secret leaked or API called: %v (calls %d)", err, calls.Load())
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	srv, issued, _ := tokenServer(t, false)
	now := time.Now()
	ts := &TokenSource{API: "test", URL: srv.URL + "/token", ClientID: "id", ClientSecret: "s3cret",
		HTTP: srv.Client(), Now: func() time.Time { return now }}
	ctx := context.Background()
	a, _ := ts.Token(ctx)
	now = now.Add(58 * time.Minute)
	b, _ := ts.Token(ctx)
	now = now.Add(90 * time.Second) // within a minute of expiry
	c, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || b == c || issued.Load() != 2 {
		t.Fatalf("tokens %s %s %s, issued %d; want reuse then refresh", a, b, c, issued.Load())
	}
}

func TestDoClassifiesAndBoundsBody(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /busy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "4")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("x", 2048))
	})
	mux.HandleFunc("GET /html", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>gateway</html>")
	})
	mux.HandleFunc("GET /soft", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"success":false}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var paused time.Duration
	c := &Client{API: "test", BaseURL: srv.URL, HTTP: srv.Client(), MaxBody: 1024,
		OnRetryAfter: func(d time.Duration) { paused = d },
		CheckBody: func(status int, body []byte) *Error {
			if strings.Contains(string(body), `"success":false`) {
				return &Error{Kind: Permanent, Message: "soft failure"}
			}
			return nil
		}}
	ctx := context.Background()
	err := c.Do(ctx, Request{Method: "GET", Path: "/busy", Op: "GET /busy"}, nil)
	if !errors.Is(err, ErrThrottled) || RetryAfter(err) != 4*time.Second || paused != 4*time.Second {
		t.Errorf("429: err=%v paused=%v", err, paused)
	}
	err = c.Do(ctx, Request{Method: "GET", Path: "/big", Op: "GET /big"}, nil)
	if err == nil || !strings.Contains(err.Error(), "larger than 1024") {
		t.Errorf("oversized body: %v", err)
	}
	var out struct{ OK bool }
	err = c.Do(ctx, Request{Method: "GET", Path: "/html", Op: "GET /html"}, &out)
	if !IsRetryable(err) {
		t.Errorf("a 200 that isn't JSON (a proxy page) should be retryable: %v", err)
	}
	err = c.Do(ctx, Request{Method: "GET", Path: "/soft", Op: "GET /soft"}, nil)
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 200 || e.Message != "soft failure" {
		t.Errorf("error inside a 200: %v", err)
	}
}

// A client's Decode decides in one pass: its *Error is the call's (filled
// in), any other error reads as a body that isn't the API's JSON.
func TestDoDecodeHook(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-1")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"n":"x"}`)
	}))
	t.Cleanup(srv.Close)
	calls := 0
	c := &Client{API: "test", BaseURL: srv.URL, HTTP: srv.Client()}
	c.Decode = func(body []byte, out any) error {
		calls++
		if calls == 1 {
			return &Error{Kind: Permanent, Message: "field n: wrong form"}
		}
		return errors.New("not JSON")
	}
	var out struct{ N int }
	err := c.Do(context.Background(), Request{Method: "GET", Path: "/x", Op: "GET /x"}, &out)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Permanent || e.API != "test" || e.Op != "GET /x" || e.StatusCode != http.StatusCreated ||
		e.RequestID != "req-1" {
		t.Errorf("Decode's *Error came back as %#v; want it, filled in", err)
	}
	err = c.Do(context.Background(), Request{Method: "GET", Path: "/x", Op: "GET /x"}, &out)
	if !IsRetryable(err) || !strings.Contains(err.Error(), "decode response") {
		t.Errorf("Decode's plain error came back as %v; want a retryable decode error", err)
	}
}

func TestDoTransportAndCancel(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close()
	c := &Client{API: "test", BaseURL: url, HTTP: &http.Client{Timeout: time.Second}}
	err := c.Do(context.Background(), Request{Method: "GET", Path: "/x", Op: "GET /x"}, nil)
	if !IsRetryable(err) {
		t.Errorf("connection refused should be retryable: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = c.Do(ctx, Request{Method: "GET", Path: "/x", Op: "GET /x"}, nil)
	if !errors.Is(err, context.Canceled) || IsRetryable(err) {
		t.Errorf("cancelled: %v", err)
	}
}
