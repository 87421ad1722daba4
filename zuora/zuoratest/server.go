// Package zuoratest is an in-memory Zuora tenant speaking the REST shapes
// zsync reads (internal/zuoraspec/specs): OAuth tokens, subscriptions with
// versions, accounts, orders, a computed billing preview, the ZOQL query the
// sweep uses, tenant concurrency and rate limits answered with 429, and
// not-found in both documented shapes. It serves tests (NewServer) and
// `zsync sandbox` / `zsync dev` (New + Handler).
package zuoratest

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/zuora"
)

// NotFoundStyle is how a missing object is answered; Zuora does both.
type NotFoundStyle int

const (
	// NotFound404 answers HTTP 404 with the error envelope.
	NotFound404 NotFoundStyle = iota
	// NotFound200 answers HTTP 200 with success:false and code 50000040.
	NotFound200
)

// notFoundCode is "cannot find entity by key" (resource 500000, category 40).
const notFoundCode = 50000040

// Option configures a Server.
type Option func(*Server)

// WithCredentials sets the client id and secret tokens are issued for
// (default sandbox/sandbox; empty values keep the default).
func WithCredentials(id, secret string) Option {
	return func(s *Server) {
		if id != "" {
			s.Base.ClientID = id
		}
		if secret != "" {
			s.Base.ClientSecret = secret
		}
	}
}

// WithNotFoundStyle picks how missing objects are answered.
func WithNotFoundStyle(st NotFoundStyle) Option { return func(s *Server) { s.notFound = st } }

// WithPageSize sets the ZOQL page size (default 2000, Zuora's), small in
// tests so paging is exercised.
func WithPageSize(n int) Option { return func(s *Server) { s.pageSize = n } }

// WithLimits sets the tenant limits: in-flight requests and requests per
// minute (0 = unlimited).
func WithLimits(concurrency, perMinute int) Option {
	return func(s *Server) { s.concurrency, s.perMinute = concurrency, perMinute }
}

// WithTokenTTL sets how long issued tokens live (default 1 h).
func WithTokenTTL(d time.Duration) Option { return func(s *Server) { s.Base.TokenTTL = d } }

// Server is the sandbox tenant. Its state is safe for concurrent use.
type Server struct {
	*sandbox.Base
	URL string // set by NewServer

	handler http.Handler

	mu          sync.Mutex
	subs        map[string]*subRecord // by subscription number
	subIDs      map[string]string     // any version's id → number
	accounts    map[string]*record    // by account number
	accountIDs  map[string]string     // id → number
	orders      map[string]json.RawMessage
	cursors     map[string]cursor
	notFound    NotFoundStyle
	pageSize    int
	concurrency int
	perMinute   int
	inFlight    int
	recent      []time.Time // request times within the last minute
	throttled   int
}

// record keeps an object as it was put, so fields zsync doesn't model (and
// the §8 type oddities) go back out unchanged.
type record struct {
	raw map[string]json.RawMessage
}

type subRecord struct {
	raw      map[string]json.RawMessage
	sub      zuora.Subscription
	versions []queryRow // one row per stored version, as ZOQL returns them
}

// New returns a sandbox for standalone use; serve Handler().
func New(opts ...Option) *Server {
	s := &Server{Base: sandbox.NewBase("", ""), pageSize: 2000}
	s.Base.ErrorBody = errorBody
	s.clear()
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	s.routes(mux)
	s.handler = s.limit(s.Base.Wrap(s.requestIDs(mux)))
	return s
}

// NewServer starts the sandbox on httptest for t; it stops when t ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	ts := httptest.NewServer(s.handler)
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// Handler serves the API and the /sandbox admin endpoints.
func (s *Server) Handler() http.Handler { return s.handler }

// Config is a client configuration for this sandbox (after NewServer).
func (s *Server) Config() zuora.Config {
	return zuora.Config{BaseURL: s.URL, ClientID: s.Base.ClientID, ClientSecret: s.Base.ClientSecret}
}

func (s *Server) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs, s.subIDs = map[string]*subRecord{}, map[string]string{}
	s.accounts, s.accountIDs = map[string]*record{}, map[string]string{}
	s.orders, s.cursors = map[string]json.RawMessage{}, map[string]cursor{}
	s.inFlight, s.recent, s.throttled = 0, nil, 0
}

// Reset clears faults, counts, tokens and every stored object; options and
// limits stay.
func (s *Server) Reset() {
	s.Base.Reset()
	s.clear()
}

// SetNotFoundStyle switches how missing objects are answered.
func (s *Server) SetNotFoundStyle(st NotFoundStyle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notFound = st
}

// SetLimits changes the tenant limits (0 = unlimited).
func (s *Server) SetLimits(concurrency, perMinute int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.concurrency, s.perMinute = concurrency, perMinute
}

// SetPageSize changes the ZOQL page size.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = max(1, n)
}

// Throttled is how many 429s the tenant limits have answered.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth/token", s.Base.IssueToken)
	mux.HandleFunc("GET /v1/subscriptions/{key}", s.auth(s.getSubscription))
	mux.HandleFunc("GET /v1/accounts/{key}", s.auth(s.getAccount))
	mux.HandleFunc("POST /v1/operations/billing-preview", s.auth(s.billingPreview))
	mux.HandleFunc("GET /v1/orders/{orderNumber}", s.auth(s.getOrder))
	mux.HandleFunc("POST /v1/action/query", s.auth(s.query))
	mux.HandleFunc("POST /v1/action/queryMore", s.auth(s.queryMore))
	s.registerAdmin(mux)
	s.Base.RegisterAdmin(mux, s.clear)
}

// auth refuses a request without a live bearer token, as Zuora does.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.Base.Authorized(r) {
			s.Base.WriteError(w, http.StatusUnauthorized, "Authentication error: invalid or expired token")
			return
		}
		h(w, r)
	}
}

// requestIDs sets Zuora-Request-Id and echoes Zuora-Track-Id.
func (s *Server) requestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Zuora-Request-Id", randomHex(16))
		if id := r.Header.Get("Zuora-Track-Id"); id != "" {
			w.Header().Set("Zuora-Track-Id", id)
		}
		next.ServeHTTP(w, r)
	})
}

// errorBody renders the REST error envelope; the code's category follows the
// status so injected faults classify as real ones would.
func errorBody(status int, msg string) []byte {
	cat := 10
	switch {
	case status == http.StatusBadRequest:
		cat = 20
	case status == http.StatusUnauthorized:
		cat = 11
	case status == http.StatusNotFound:
		cat = 40
	case status == http.StatusConflict:
		cat = 50
	case status == http.StatusTooManyRequests:
		cat = 70
	case status == http.StatusServiceUnavailable:
		cat = 61
	case status >= 500:
		cat = 60
	}
	b, _ := json.Marshal(map[string]any{
		"success":   false,
		"processId": strings.ToUpper(randomHex(8)),
		"reasons":   []map[string]any{{"code": 50000000 + cat, "message": msg}},
	})
	return b
}

// writeNotFound answers a missing object in the configured style.
func (s *Server) writeNotFound(w http.ResponseWriter, key string) {
	s.mu.Lock()
	st := s.notFound
	s.mu.Unlock()
	status := http.StatusNotFound
	if st == NotFound200 {
		status = http.StatusOK
	}
	sandbox.WriteJSON(w, status, map[string]any{
		"success":   false,
		"processId": strings.ToUpper(randomHex(8)),
		"reasons":   []map[string]any{{"code": notFoundCode, "message": fmt.Sprintf("Cannot find entity by key: '%s'.", key)}},
		"requestId": randomHex(16),
	})
}

func writeInvalid(w http.ResponseWriter, msg string) {
	sandbox.WriteJSON(w, http.StatusBadRequest, map[string]any{
		"success":   false,
		"processId": strings.ToUpper(randomHex(8)),
		"reasons":   []map[string]any{{"code": 58730020, "message": msg}},
	})
}

// withSuccess writes raw with "success": true, Zuora's answer shape.
func withSuccess(w http.ResponseWriter, raw map[string]json.RawMessage) {
	out := make(map[string]json.RawMessage, len(raw)+1)
	for k, v := range raw {
		out[k] = v
	}
	out["success"] = json.RawMessage("true")
	sandbox.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	allSegments := r.URL.Query().Get("charge-detail") == "all-segments"
	s.getByKey(w, r.PathValue("key"), func(key string) map[string]json.RawMessage {
		rec := s.subs[key]
		if rec == nil {
			rec = s.subs[s.subIDs[key]]
		}
		if rec == nil {
			return nil
		}
		if allSegments {
			return rec.raw
		}
		return withoutSegments(rec.raw)
	})
}

// withoutSegments is raw as Zuora answers without charge-detail=all-segments:
// no chargeSegments on the charges.
func withoutSegments(raw map[string]json.RawMessage) map[string]json.RawMessage {
	var plans []map[string]json.RawMessage
	if json.Unmarshal(raw["ratePlans"], &plans) != nil {
		return raw
	}
	for _, rp := range plans {
		var charges []map[string]json.RawMessage
		if json.Unmarshal(rp["ratePlanCharges"], &charges) != nil {
			continue
		}
		for _, c := range charges {
			delete(c, "chargeSegments")
		}
		rp["ratePlanCharges"], _ = json.Marshal(charges)
	}
	out := maps.Clone(raw)
	out["ratePlans"], _ = json.Marshal(plans)
	return out
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	s.getByKey(w, r.PathValue("key"), func(key string) map[string]json.RawMessage {
		rec := s.accounts[key]
		if rec == nil {
			rec = s.accounts[s.accountIDs[key]]
		}
		if rec == nil {
			return nil
		}
		return rec.raw
	})
}

// getByKey answers a GET-by-key with what find (called under the lock) holds
// for key: the stored object, or not found in the configured style.
func (s *Server) getByKey(w http.ResponseWriter, key string, find func(string) map[string]json.RawMessage) {
	s.mu.Lock()
	raw := find(key)
	s.mu.Unlock()
	if raw == nil {
		s.writeNotFound(w, key)
		return
	}
	withSuccess(w, raw)
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) {
	n := r.PathValue("orderNumber")
	s.mu.Lock()
	raw, ok := s.orders[n]
	s.mu.Unlock()
	if !ok {
		s.writeNotFound(w, n)
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "order": raw})
}

func (s *Server) billingPreview(w http.ResponseWriter, r *http.Request) {
	var req zuora.BillingPreviewRequest
	if !sandbox.DecodeJSON(w, r, &req) {
		return
	}
	if _, ok := parseDate(req.TargetDate); !ok {
		writeInvalid(w, "targetDate is required, in the format yyyy-MM-dd")
		return
	}
	key := req.AccountID
	if key == "" {
		key = req.AccountNumber
	}
	s.mu.Lock()
	number := key
	if _, ok := s.accounts[number]; !ok {
		number = s.accountIDs[key]
	}
	rec := s.accounts[number]
	var accountID string
	var subs []zuora.Subscription
	if rec != nil {
		accountID = s.accountIDLocked(number)
		for _, sr := range s.subs {
			owner := sr.sub.InvoiceOwnerAccountNumber
			if owner == "" {
				owner = sr.sub.AccountNumber
			}
			if owner == number || (owner == "" && sr.sub.AccountID == accountID) {
				subs = append(subs, sr.sub)
			}
		}
	}
	s.mu.Unlock()
	if key == "" {
		writeInvalid(w, "accountId or accountNumber is required")
		return
	}
	if rec == nil {
		s.writeNotFound(w, key)
		return
	}
	items, err := preview(subs, req)
	if err != nil {
		writeInvalid(w, err.Error())
		return
	}
	if items == nil {
		items = []zuora.InvoiceItem{}
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{
		"success": true, "accountId": accountID, "invoiceItems": items, "creditMemoItems": []any{},
	})
}

func (s *Server) accountIDLocked(number string) string {
	for id, n := range s.accountIDs {
		if n == number {
			return id
		}
	}
	return ""
}

// limit enforces the tenant limits on API requests (not /oauth/token, which
// Zuora exempts from the concurrency limit, nor /sandbox admin).
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		now := s.Base.Now()
		s.mu.Lock()
		conc, perMin := s.concurrency, s.perMinute
		if perMin > 0 {
			cut := 0
			for cut < len(s.recent) && !s.recent[cut].After(now.Add(-time.Minute)) {
				cut++
			}
			s.recent = s.recent[cut:]
		}
		h := w.Header()
		if conc > 0 {
			h.Set("Concurrency-Limit-Type", "Default")
			h.Set("Concurrency-Limit-Limit", fmt.Sprint(conc))
		}
		switch {
		case conc > 0 && s.inFlight >= conc:
			s.throttled++
			s.mu.Unlock()
			h.Set("Concurrency-Limit-Remaining", "0")
			h.Set("Retry-After", "1")
			s.Base.WriteError(w, http.StatusTooManyRequests, "Concurrent request limit exceeded")
			return
		case perMin > 0 && len(s.recent) >= perMin:
			wait := s.recent[0].Add(time.Minute).Sub(now)
			s.throttled++
			s.mu.Unlock()
			secs := max(1, int((wait+time.Second-1)/time.Second))
			h.Set("Retry-After", fmt.Sprint(secs))
			h.Set("RateLimit-Limit", fmt.Sprintf("%d;w=60", perMin))
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", fmt.Sprint(secs))
			s.Base.WriteError(w, http.StatusTooManyRequests, "Request rate limit exceeded")
			return
		}
		s.inFlight++
		if perMin > 0 {
			s.recent = append(s.recent, now)
			h.Set("RateLimit-Limit", fmt.Sprintf("%d;w=60", perMin))
			h.Set("RateLimit-Remaining", fmt.Sprint(perMin-len(s.recent)))
		}
		if conc > 0 {
			h.Set("Concurrency-Limit-Remaining", fmt.Sprint(conc-s.inFlight))
		}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
