// Package limiotest is an in-memory Limio sandbox: a real HTTP server speaking
// the Objects API shapes Limio documents (token, get, partial
// put, list with queryMore, related objects, timeline events), with the
// shared sandbox admin endpoints (faults, request counts, reset) and its own
// for seeding and inspecting objects. It runs under httptest in tests and
// standalone under `zsync sandbox` / `zsync dev`.
//
// Where Limio's behaviour is undocumented the sandbox behaves as zsync
// assumes (and says so): a PUT to an unknown id that carries record_type
// creates the object; a top-level status in a PUT body is stored; /related
// returns schedule entries; list summaries carry data.zuora. Each can be
// switched the other way (Behaviour, PUT /sandbox/behaviour), so tests show
// what zsync does on a tenant where the assumption is false.
package limiotest

import (
	crand "crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio"
)

// Option configures a Server.
type Option func(*Server)

// WithCredentials sets the client id and secret the token endpoint accepts
// (default sandbox/sandbox).
func WithCredentials(id, secret string) Option {
	return func(s *Server) { s.Base.ClientID, s.Base.ClientSecret = id, secret }
}

// WithClock sets the clock for token expiry and timestamps.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.Base.SetClock(now) } }

// WithTokenTTL sets how long issued tokens live (default one hour).
func WithTokenTTL(d time.Duration) Option { return func(s *Server) { s.Base.TokenTTL = d } }

// Server is the Limio sandbox. It is safe for concurrent use.
type Server struct {
	*sandbox.Base
	URL string // set by NewServer

	handler http.Handler

	mu      sync.Mutex
	objects map[string]map[string]map[string]any // path type → id → object
	seed    map[string]map[string]map[string]any // restored by POST /sandbox/reset
	writes  int
	seq     int
	behave  Behaviour
}

// New returns a sandbox not yet listening; serve Handler().
func New(opts ...Option) *Server {
	s := &Server{Base: sandbox.NewBase("", ""), objects: map[string]map[string]map[string]any{}, behave: DefaultBehaviour()}
	for _, o := range opts {
		o(s)
	}
	s.handler = s.routes()
	return s
}

// NewServer starts a sandbox on a loopback port, closed when t ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	hs := httptest.NewServer(s.handler)
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Handler serves the API and the admin endpoints.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", s.IssueToken)
	mux.HandleFunc("GET /api/objects/limio/{type}", s.auth(s.list))
	mux.HandleFunc("GET /api/objects/limio/{type}/{id}", s.auth(s.get))
	mux.HandleFunc("PUT /api/objects/limio/{type}/{id}", s.auth(s.put))
	mux.HandleFunc("GET /api/objects/limio/{type}/{id}/related", s.auth(s.related))
	mux.HandleFunc("POST /api/timeline/subscription", s.auth(s.timeline))

	mux.HandleFunc("PUT /sandbox/objects/{type}/{id}", s.adminPut)
	mux.HandleFunc("GET /sandbox/objects/{type}/{id}", s.adminGet)
	mux.HandleFunc("PUT /sandbox/behaviour", s.putBehaviour)
	mux.HandleFunc("GET /sandbox/behaviour", func(w http.ResponseWriter, _ *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.CurrentBehaviour())
	})
	mux.HandleFunc("GET /sandbox/related/{id}", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, map[string]any{"items": s.Related(r.PathValue("id"))})
	})
	s.RegisterAdmin(mux, s.restoreSeed)
	return s.Wrap(mux)
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.Authorized(r) {
			s.WriteError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		h(w, r)
	}
}

// pathArgs checks the {type} and {id} of a request, answering 404 for an
// unknown type and 400 for a malformed id.
func (s *Server) pathArgs(w http.ResponseWriter, r *http.Request) (string, string, bool) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	if _, ok := limio.RecordType(typ); !ok {
		s.WriteError(w, http.StatusNotFound, "unknown path type "+strconv.Quote(typ))
		return "", "", false
	}
	if r.Pattern != "" && strings.Contains(r.Pattern, "{id}") && !limio.ValidID(id) {
		s.WriteError(w, http.StatusBadRequest, "malformed id")
		return "", "", false
	}
	return typ, id, true
}

func (s *Server) stamp() string { return s.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)[:n]
}
