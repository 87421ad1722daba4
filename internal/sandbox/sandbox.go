// Package sandbox holds what the Zuora and Limio sandboxes share: client
// credentials and expiring bearer tokens, fault injection, request counts and
// the admin endpoints that drive them (/sandbox/faults, /sandbox/requests).
package sandbox

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault makes matching requests fail or slow down. Path is a prefix.
type Fault struct {
	Method      string  `json:"method,omitempty"` // empty matches any method
	Path        string  `json:"path"`             // a prefix of the request path
	Query       string  `json:"query,omitempty"`  // a substring of the raw query, e.g. "page=2"; empty matches any
	Status      int     `json:"status"`           // 0: answer normally after the latency
	LatencyMS   int     `json:"latency_ms,omitempty"`
	Probability float64 `json:"probability,omitempty"` // 0 means 1
	Count       int     `json:"count,omitempty"`       // times it fires; 0 means unlimited
	RetryAfterS int     `json:"retry_after_s,omitempty"`
	Body        string  `json:"body,omitempty"` // raw body to answer; default from ErrorBody
}

// Base is embedded by each sandbox server.
type Base struct {
	ClientID     string
	ClientSecret string
	TokenTTL     time.Duration
	// ErrorBody renders an error in the API's own shape.
	ErrorBody func(status int, msg string) []byte

	mu     sync.Mutex
	faults []*Fault
	counts map[string]int
	tokens map[string]time.Time
	now    func() time.Time
}

// NewBase returns a Base with the sandbox's default credentials.
func NewBase(clientID, clientSecret string) *Base {
	if clientID == "" {
		clientID = "sandbox"
	}
	if clientSecret == "" {
		clientSecret = "sandbox"
	}
	return &Base{ClientID: clientID, ClientSecret: clientSecret, TokenTTL: time.Hour,
		counts: map[string]int{}, tokens: map[string]time.Time{}, now: time.Now}
}

// SetClock replaces the clock used for token expiry (tests).
func (b *Base) SetClock(now func() time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = now
}

// Now is the sandbox's clock.
func (b *Base) Now() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now()
}

// AddFault registers a fault.
func (b *Base) AddFault(f Fault) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := f
	b.faults = append(b.faults, &c)
}

// ClearFaults removes every fault.
func (b *Base) ClearFaults() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.faults = nil
}

// Reset clears faults, counts and tokens.
func (b *Base) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.faults, b.counts, b.tokens = nil, map[string]int{}, map[string]time.Time{}
}

// ExpireTokens makes every issued token invalid (as if an hour had passed).
func (b *Base) ExpireTokens() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = map[string]time.Time{}
}

// Requests returns the request counts keyed "METHOD /path".
func (b *Base) Requests() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.counts))
	for k, v := range b.counts {
		out[k] = v
	}
	return out
}

// Count sums the requests with this method (empty: any) whose path starts
// with prefix.
func (b *Base) Count(method, prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for k, v := range b.counts {
		m, p, _ := strings.Cut(k, " ")
		if (method == "" || m == method) && strings.HasPrefix(p, prefix) {
			n += v
		}
	}
	return n
}

// IssueToken answers a client-credentials token request (form-encoded, or
// HTTP Basic as Limio's older page allows).
func (b *Base) IssueToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		b.WriteError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		b.WriteError(w, http.StatusBadRequest, "malformed form body")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" {
		id, secret = u, p
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if id != b.ClientID || secret != b.ClientSecret {
		WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	buf := make([]byte, 16)
	_, _ = crand.Read(buf)
	tok := hex.EncodeToString(buf)
	b.mu.Lock()
	b.tokens[tok] = b.now().Add(b.TokenTTL)
	b.mu.Unlock()
	WriteJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "bearer", "expires_in": int(b.TokenTTL / time.Second),
		"scope": "user.sandbox-integration-user entity.sandbox tenant.1", "jti": tok[:8],
	})
}

// Authorized reports whether r carries a live bearer token.
func (b *Base) Authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	exp, ok := b.tokens[tok]
	return ok && b.now().Before(exp)
}

// Wrap counts every API request and applies faults before next runs.
// Admin paths (/sandbox/...) are neither counted nor faulted.
func (b *Base) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/sandbox/") {
			next.ServeHTTP(w, r)
			return
		}
		f := b.match(r)
		if f != nil && f.LatencyMS > 0 {
			// The answer leaves LatencyMS after the request arrived: the
			// handler's own work counts toward it, as a real API's latency
			// includes its work, so a 50 ms fault makes a 50 ms call.
			deadline := time.Now().Add(time.Duration(f.LatencyMS) * time.Millisecond)
			if f.Status == 0 {
				rec := &recorder{header: http.Header{}, status: http.StatusOK}
				next.ServeHTTP(rec, r)
				if !sleepUntil(r.Context(), deadline) {
					return
				}
				rec.copyTo(w)
				return
			}
			if !sleepUntil(r.Context(), deadline) {
				return
			}
		}
		if f != nil && f.Status != 0 {
			if f.RetryAfterS > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfterS))
			}
			if f.Body != "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(f.Status)
				_, _ = w.Write([]byte(f.Body))
				return
			}
			b.WriteError(w, f.Status, fmt.Sprintf("injected fault %d", f.Status))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// match counts r and picks the first fault that fires for it.
func (b *Base) match(r *http.Request) *Fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.counts[r.Method+" "+r.URL.Path]++
	for i, f := range b.faults {
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if !strings.HasPrefix(r.URL.Path, f.Path) || !strings.Contains(r.URL.RawQuery, f.Query) {
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && rand.Float64() >= f.Probability {
			continue
		}
		fired := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				b.faults = append(b.faults[:i:i], b.faults[i+1:]...)
			}
		}
		return &fired
	}
	return nil
}

// RegisterAdmin mounts the shared admin endpoints. reset is called by
// POST /sandbox/reset after the shared state is cleared.
func (b *Base) RegisterAdmin(mux *http.ServeMux, reset func()) {
	mux.HandleFunc("POST /sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if !DecodeJSON(w, r, &f) {
			return
		}
		if f.Path == "" || !strings.HasPrefix(f.Path, "/") {
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "path must start with /"})
			return
		}
		b.AddFault(f)
		WriteJSON(w, http.StatusCreated, f)
	})
	mux.HandleFunc("DELETE /sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		b.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /sandbox/requests", func(w http.ResponseWriter, r *http.Request) {
		counts := b.Requests()
		total := 0
		for _, v := range counts {
			total += v
		}
		WriteJSON(w, http.StatusOK, map[string]any{"total": total, "counts": counts})
	})
	mux.HandleFunc("POST /sandbox/reset", func(w http.ResponseWriter, r *http.Request) {
		b.Reset()
		if reset != nil {
			reset()
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// WriteError answers in the API's error shape.
func (b *Base) WriteError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if b.ErrorBody != nil {
		_, _ = w.Write(b.ErrorBody(status, msg))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads a JSON body (at most 4 MiB) into v, answering 400 itself
// when it can't.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<20)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed JSON body: " + err.Error()})
		return false
	}
	return true
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// recorder holds a handler's answer until the injected latency has passed.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}

func (r *recorder) copyTo(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}
