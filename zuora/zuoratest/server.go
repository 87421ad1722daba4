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

// WithPreviewForm picks the shape of the billing preview's answer (default:
// the published one).
func WithPreviewForm(f PreviewForm) Option { return func(s *Server) { s.previewForm = f } }

// WithPageSize sets the ZOQL page size (default 2000, Zuora's), small in
// tests so paging is exercised.
func WithPageSize(n int) Option { return func(s *Server) { s.pageSize = n } }

// WithTokenTTL sets how long issued tokens live (default 1 h).
func WithTokenTTL(d time.Duration) Option { return func(s *Server) { s.Base.TokenTTL = d } }

// Server is the sandbox tenant. Its state is safe for concurrent use.
type Server struct {
	*sandbox.Base
	URL string // set by NewServer

	handler http.Handler

	mu          sync.Mutex
	subs        map[string]*subRecord     // by subscription number
	subIDs      map[string]string         // any version's id → number
	accounts    map[string]*accountRecord // by account number
	accountIDs  map[string]string         // id → number
	orders      map[string]json.RawMessage
	previews    map[string]json.RawMessage // canned billing previews by account number or id
	queryAnswer json.RawMessage            // a canned /v1/action/query answer
	cursors     map[string]cursor
	notFound    NotFoundStyle
	previewForm PreviewForm
	pageSize    int
	tenantLimit limitState // tenant limits (limits.go)
}

type subRecord struct {
	raw      map[string]json.RawMessage
	sub      zuora.Subscription
	versions []queryRow // one row per stored version, as ZOQL returns them
}

// New returns a sandbox for standalone use; serve Handler().
func New(opts ...Option) *Server {
	s := &Server{Base: sandbox.NewBase("", ""), pageSize: 2000, tenantLimit: newLimitState()}
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
	s.accounts, s.accountIDs = map[string]*accountRecord{}, map[string]string{}
	s.orders, s.cursors = map[string]json.RawMessage{}, map[string]cursor{}
	s.previews, s.queryAnswer = map[string]json.RawMessage{}, nil
	s.tenantLimit.resetCounts()
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

// SetPreviewForm switches the shape of the billing preview's answer.
func (s *Server) SetPreviewForm(f PreviewForm) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.previewForm = f
}

// SetPageSize changes the ZOQL page size.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = max(1, n)
}

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth/token", s.Base.IssueToken)
	mux.HandleFunc("GET /v1/subscriptions/{key}", s.auth(s.getSubscription))
	mux.HandleFunc("GET /v1/accounts/{key}", s.auth(s.getAccount))
	mux.HandleFunc("GET /v1/subscriptions/accounts/{accountKey}", s.auth(s.accountSubscriptions))
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
		w.Header().Set("Zuora-Request-Id", requestID())
		if id := r.Header.Get("Zuora-Track-Id"); id != "" {
			w.Header().Set("Zuora-Track-Id", id)
		}
		next.ServeHTTP(w, r)
	})
}

// StatusForCategory is the HTTP status Zuora answers an error category
// (the last two digits of its 8-digit codes) with under the pinned
// Zuora-Version (2024-05-20 and later; before it, errors came as 200).
func StatusForCategory(cat int) int {
	switch {
	case cat == 10:
		return http.StatusForbidden
	case cat == 11:
		return http.StatusUnauthorized
	case cat >= 20 && cat <= 29, cat == 30, cat == 90:
		return http.StatusBadRequest
	case cat == 40:
		return http.StatusNotFound
	case cat == 45:
		return http.StatusMethodNotAllowed
	case cat == 50:
		return http.StatusConflict
	case cat == 70:
		return http.StatusTooManyRequests
	default: // 60, 61, 99 and anything unknown
		return http.StatusInternalServerError
	}
}

// categoryForStatus is the category an injected fault of that status
// carries, the inverse of StatusForCategory (a 5xx other than 500 is no
// category's status: the gateway's, it carries 60).
func categoryForStatus(status int) int {
	switch status {
	case http.StatusForbidden:
		return 10
	case http.StatusUnauthorized:
		return 11
	case http.StatusBadRequest:
		return 20
	case http.StatusNotFound:
		return 40
	case http.StatusMethodNotAllowed:
		return 45
	case http.StatusConflict:
		return 50
	case http.StatusTooManyRequests:
		return 70
	}
	return 60
}

// errorBody renders the REST error envelope; the code's category follows the
// status so injected faults classify as real ones would.
func errorBody(status int, msg string) []byte {
	return categoryBody(categoryForStatus(status), msg)
}

func categoryBody(cat int, msg string) []byte {
	b, _ := json.Marshal(map[string]any{
		"success":   false,
		"processId": strings.ToUpper(randomHex(8)),
		"reasons":   []map[string]any{{"code": 50000000 + cat, "message": msg}},
	})
	return b
}

// FailCategory makes the next count requests under path (a prefix; count 0
// is every one) fail with an error of category cat, at the status the
// pinned Zuora-Version gives it.
func (s *Server) FailCategory(path string, cat, count int) {
	s.Base.AddFault(sandbox.Fault{Path: path, Status: StatusForCategory(cat), Count: count,
		Body: string(categoryBody(cat, fmt.Sprintf("sandbox: category %d", cat)))})
}

// writeNotFound answers a missing object in the configured style.
func (s *Server) writeNotFound(w http.ResponseWriter, key string) {
	s.writeNotFoundCode(w, key, notFoundCode)
}

// writeNotFoundCode is writeNotFound with the code as given: the Orders API
// declares its reason codes as strings, the others as integers.
func (s *Server) writeNotFoundCode(w http.ResponseWriter, key string, code any) {
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
		"reasons":   []map[string]any{{"code": code, "message": fmt.Sprintf("Cannot find entity by key: '%s'.", key)}},
		"requestId": requestID(),
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
		s.writeNotFoundCode(w, n, fmt.Sprint(notFoundCode))
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
	if canned, ok := s.previews[key]; ok {
		s.mu.Unlock()
		sandbox.WriteJSON(w, http.StatusOK, canned)
		return
	}
	number := key
	if _, ok := s.accounts[number]; !ok {
		number = s.accountIDs[key]
	}
	rec := s.accounts[number]
	var accountID string
	var subs []zuora.Subscription
	form := s.previewForm
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
	ans, err := preview(subs, req, form, s.Base.Now())
	if err != nil {
		writeInvalid(w, err.Error())
		return
	}
	items, credits := ans.items, ans.credits
	if items == nil {
		items = []zuora.InvoiceItem{}
	}
	if credits == nil {
		credits = []zuora.CreditMemoItem{}
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{
		"success": true, "accountId": accountID, "invoiceItems": items, "creditMemoItems": credits,
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

// requestID is a Zuora-Request-Id: a 36-character UUID, as the spec pins it.
func requestID() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
