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
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio"
)

// pathTypes are the Objects API path types (as Limio documents them) with the
// record_type stored objects of that type carry, where zsync knows it.
var pathTypes = map[string]string{
	"orders": "order", "customers": "customer", "subscriptions": "subscription", "identities": "identity",
	"address": "address", "schedules": "schedule", "payment_methods": "payment_method",
	"subscription_offers": "subscription_offer", "user_entitlements": "", "gift_code": "",
	"promo_codes_v2": "", "events": "event", "process": "",
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$`)

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

// Behaviour switches the sandbox's undocumented behaviours, one per
// assumption zsync makes (limio.Assumption*); all true by default.
type Behaviour struct {
	// PutCreates: a PUT to an unknown id with a record_type creates the
	// object; false answers 404, as Limio documents ("updates will only
	// occur for the id provided").
	PutCreates bool `json:"put_creates"`
	// PutStatus: a top-level status in a PUT body is stored; false ignores
	// it (the documented body is name + data), data.status is still stored.
	PutStatus bool `json:"put_status"`
	// RelatedSchedules: /related returns schedule entries; false leaves them
	// out (third parties saw none there).
	RelatedSchedules bool `json:"related_schedules"`
	// SummaryZuora: subscription list summaries carry the envelope and
	// data.zuora; false leaves only id, name and status.
	SummaryZuora bool `json:"summary_zuora"`
}

// DefaultBehaviour is zsync's assumptions, all true.
func DefaultBehaviour() Behaviour {
	return Behaviour{PutCreates: true, PutStatus: true, RelatedSchedules: true, SummaryZuora: true}
}

// SetBehaviour switches the sandbox's behaviours.
func (s *Server) SetBehaviour(b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behave = b
}

// CurrentBehaviour returns the behaviours in force.
func (s *Server) CurrentBehaviour() Behaviour {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.behave
}

// putBehaviour is PUT /sandbox/behaviour: a JSON object of booleans; the
// keys given change, others stay; an unknown key or a non-boolean is a 400.
func (s *Server) putBehaviour(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	if !sandbox.DecodeJSON(w, r, &in) {
		return
	}
	s.mu.Lock()
	b := s.behave
	s.mu.Unlock()
	fields := map[string]*bool{
		"put_creates": &b.PutCreates, "put_status": &b.PutStatus,
		"related_schedules": &b.RelatedSchedules, "summary_zuora": &b.SummaryZuora,
	}
	for k, v := range in {
		p, ok := fields[k]
		if !ok {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown behaviour " + strconv.Quote(k)})
			return
		}
		bv, ok := v.(bool)
		if !ok {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": k + " must be true or false"})
			return
		}
		*p = bv
	}
	s.SetBehaviour(b)
	sandbox.WriteJSON(w, http.StatusOK, b)
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
	if _, ok := pathTypes[typ]; !ok {
		s.WriteError(w, http.StatusNotFound, "unknown path type "+strconv.Quote(typ))
		return "", "", false
	}
	if r.Pattern != "" && strings.Contains(r.Pattern, "{id}") && !idPattern.MatchString(id) {
		s.WriteError(w, http.StatusBadRequest, "malformed id")
		return "", "", false
	}
	return typ, id, true
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	typ, id, ok := s.pathArgs(w, r)
	if !ok {
		return
	}
	obj, found := s.Get(typ, id)
	if !found {
		s.WriteError(w, http.StatusNotFound, "Not Found")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, obj)
}

// put is Limio's update (deep-merge data, set status and name) and zsync's
// assumed create (unknown id with a record_type).
func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	typ, id, ok := s.pathArgs(w, r)
	if !ok {
		return
	}
	var body map[string]any
	if !sandbox.DecodeJSON(w, r, &body) {
		return
	}
	data, ok := body["data"].(map[string]any)
	if !ok {
		s.WriteError(w, http.StatusBadRequest, "Bad request (missing required fields): data")
		return
	}
	if bid, present := body["id"]; present && bid != id {
		s.WriteError(w, http.StatusBadRequest, "id in body does not match the path")
		return
	}
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, exists := s.objects[typ][id]
	if !s.behave.PutStatus {
		delete(body, "status") // not part of the documented body
	}
	if !exists {
		rt, _ := body["record_type"].(string)
		if rt == "" || !s.behave.PutCreates {
			s.WriteError(w, http.StatusNotFound, "Not Found")
			return
		}
		if want := pathTypes[typ]; want != "" && rt != want {
			s.WriteError(w, http.StatusBadRequest, fmt.Sprintf("record_type %q does not belong under %s", rt, typ))
			return
		}
		obj = deepCopy(body)
		obj["id"] = id
		setDefault(obj, "service", "limio")
		setDefault(obj, "mode", "production")
		setDefault(obj, "created", now)
		obj["updated"] = now
		s.store(typ, obj)
	} else {
		cur, _ := obj["data"].(map[string]any)
		if cur == nil {
			cur = map[string]any{}
			obj["data"] = cur
		}
		merge(cur, deepCopy(data))
		// Envelope fields zsync writes beside data (an assumption about
		// Limio: its documented PUT body is name and data): status, and the
		// customer a subscription belongs to (re-linked after an owner transfer).
		for _, k := range []string{"status", "name", "customer"} {
			if v, ok := body[k].(string); ok {
				obj[k] = v
			}
		}
		obj["updated"] = now
	}
	s.writes++
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{
		"id": id, "sort_key": "object/" + str(obj["record_type"]), "data": data,
	})
}

// list answers summaries in id order; the cursor is the last id served.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	typ, _, ok := s.pathArgs(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "limit" && k != "queryMore" {
			// Third parties observed server-side filters answering 400.
			s.WriteError(w, http.StatusBadRequest, "unsupported query parameter "+strconv.Quote(k))
			return
		}
	}
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.WriteError(w, http.StatusBadRequest, "limit must be 1..1000")
			return
		}
		limit = n
	}
	after := ""
	if v := q.Get("queryMore"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			s.WriteError(w, http.StatusBadRequest, "malformed queryMore")
			return
		}
		after = string(b)
	}
	s.mu.Lock()
	ids := sortedIDs(s.objects[typ])
	items := []map[string]any{}
	next := ""
	for _, id := range ids {
		if id <= after {
			continue
		}
		if len(items) == limit {
			next = base64.RawURLEncoding.EncodeToString([]byte(items[len(items)-1]["id"].(string)))
			break
		}
		if typ == limio.PathSubscriptions && !s.behave.SummaryZuora {
			items = append(items, bareSummary(s.objects[typ][id]))
			continue
		}
		items = append(items, summary(s.objects[typ][id]))
	}
	s.mu.Unlock()
	resp := map[string]any{"items": items}
	if next != "" {
		resp["queryMore"] = next
	}
	sandbox.WriteJSON(w, http.StatusOK, resp)
}

// summary is what the list answers per object: the envelope and data.zuora
// (zsync's Resolve scan matches on it), not the full data.
func summary(obj map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"id", "record_type", "name", "reference", "status", "customer", "owner", "related", "created", "updated"} {
		if v, ok := obj[k]; ok {
			out[k] = v
		}
	}
	if data, ok := obj["data"].(map[string]any); ok {
		if z, ok := data["zuora"]; ok {
			out["data"] = map[string]any{"zuora": deepCopyValue(z)}
		}
	}
	return out
}

// bareSummary is a summary with only id, name and status (Behaviour
// SummaryZuora false).
func bareSummary(obj map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"id", "name", "status"} {
		if v, ok := obj[k]; ok {
			out[k] = v
		}
	}
	return out
}

func (s *Server) related(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("type") {
	case "subscription", "subscriptions":
	default:
		s.WriteError(w, http.StatusNotFound, "unknown path type")
		return
	}
	id := r.PathValue("id")
	if _, ok := s.Get(limio.PathSubscriptions, id); !ok {
		s.WriteError(w, http.StatusNotFound, "Not Found")
		return
	}
	items := s.Related(id)
	if !s.CurrentBehaviour().RelatedSchedules {
		kept := items[:0]
		for _, it := range items {
			if str(it["record_type"]) != limio.RecordSchedule {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

// Related returns every object related to subscription subID, and its
// customer, in a stable order.
func (s *Server) Related(subID string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	if sub, ok := s.objects[limio.PathSubscriptions][subID]; ok {
		if cus, ok := s.objects[limio.PathCustomers][str(sub["customer"])]; ok {
			c := deepCopy(cus)
			setDefault(c, "record_type", limio.RecordCustomer)
			out = append(out, c)
		}
	}
	types := make([]string, 0, len(s.objects))
	for t := range s.objects {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		for _, id := range sortedIDs(s.objects[t]) {
			obj := s.objects[t][id]
			if str(obj["related"]) != subID {
				continue
			}
			c := deepCopy(obj)
			if rt := pathTypes[t]; rt != "" {
				setDefault(c, "record_type", rt)
			}
			out = append(out, c)
		}
	}
	if out == nil {
		out = []map[string]any{}
	}
	return out
}

// timeline stores the event as an events object related to the subscription
// (and pointing to it at data.event.subscriptions[].id, as observed).
func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	var ev limio.TimelineEvent
	if !sandbox.DecodeJSON(w, r, &ev) {
		return
	}
	if ev.Name == "" || ev.Type == "" || (ev.ForSubscription.ID == "" && ev.ForSubscription.Name == "") {
		s.WriteError(w, http.StatusBadRequest, "Bad request (missing required fields)")
		return
	}
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	subID := ev.ForSubscription.ID
	if subID == "" {
		for id, sub := range s.objects[limio.PathSubscriptions] {
			if str(sub["name"]) == ev.ForSubscription.Name || str(sub["reference"]) == ev.ForSubscription.Name {
				subID = id
				break
			}
		}
	}
	if _, ok := s.objects[limio.PathSubscriptions][subID]; !ok {
		s.WriteError(w, http.StatusNotFound, "subscription not found")
		return
	}
	s.seq++
	id := fmt.Sprintf("event-%s%06d", randHex(8), s.seq)
	ref := strings.ToUpper(randHex(6))
	var fields any
	if b, err := json.Marshal(ev.Fields); err == nil {
		_ = json.Unmarshal(b, &fields)
	}
	s.store(limio.PathEvents, map[string]any{
		"id": id, "record_type": limio.RecordEvent, "related": subID, "status": "submitted",
		"reference": ref, "service": "limio", "mode": "production", "created": now, "updated": now,
		"name": ev.Name,
		"data": map[string]any{
			"type": ev.Type, "name": ev.Name, "source": ev.Source, "fields": fields,
			"event": map[string]any{"subscriptions": []any{map[string]any{"id": subID}}},
		},
	})
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "reference": ref, "status": "submitted"})
}

func (s *Server) adminPut(w http.ResponseWriter, r *http.Request) {
	typ, id, ok := s.pathArgs(w, r)
	if !ok {
		return
	}
	var obj map[string]any
	if !sandbox.DecodeJSON(w, r, &obj) {
		return
	}
	if obj == nil {
		sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON object"})
		return
	}
	obj["id"] = id
	if err := s.Put(typ, obj); err != nil {
		sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, obj)
}

func (s *Server) adminGet(w http.ResponseWriter, r *http.Request) {
	typ, id, ok := s.pathArgs(w, r)
	if !ok {
		return
	}
	obj, found := s.Get(typ, id)
	if !found {
		sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, obj)
}

// Put stores obj (any value that marshals to a JSON object with an id) under
// pathType as given, replacing what was there. It counts as no write.
func (s *Server) Put(pathType string, obj any) error {
	if _, ok := pathTypes[pathType]; !ok {
		return fmt.Errorf("unknown path type %q", pathType)
	}
	m, err := toMap(obj)
	if err != nil {
		return err
	}
	id := str(m["id"])
	if !idPattern.MatchString(id) {
		return fmt.Errorf("object without a valid id: %q", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store(pathType, m)
	return nil
}

// Get returns a copy of a stored object.
func (s *Server) Get(pathType, id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, ok := s.objects[pathType][id]
	if !ok {
		return nil, false
	}
	return deepCopy(obj), true
}

// Object decodes a stored object into T.
func Object[T any](s *Server, pathType, id string) (T, bool) {
	var v T
	obj, ok := s.Get(pathType, id)
	if !ok {
		return v, false
	}
	b, _ := json.Marshal(obj)
	if err := json.Unmarshal(b, &v); err != nil {
		return v, false
	}
	return v, true
}

// Subscription returns a stored subscription.
func (s *Server) Subscription(id string) (limio.Subscription, bool) {
	return Object[limio.Subscription](s, limio.PathSubscriptions, id)
}

// Customer returns a stored customer.
func (s *Server) Customer(id string) (limio.Customer, bool) {
	return Object[limio.Customer](s, limio.PathCustomers, id)
}

// Schedules returns the schedule entries related to subID, by id.
func (s *Server) Schedules(subID string) []limio.Schedule {
	return relatedOf[limio.Schedule](s, limio.PathSchedules, subID)
}

// Addresses returns the addresses related to subID, by id.
func (s *Server) Addresses(subID string) []limio.Address {
	return relatedOf[limio.Address](s, limio.PathAddress, subID)
}

// Events returns the events related to subID (timeline posts included), by id.
func (s *Server) Events(subID string) []map[string]any {
	return relatedOf[map[string]any](s, limio.PathEvents, subID)
}

func relatedOf[T any](s *Server, pathType, subID string) []T {
	s.mu.Lock()
	var objs []map[string]any
	for _, id := range sortedIDs(s.objects[pathType]) {
		if obj := s.objects[pathType][id]; str(obj["related"]) == subID {
			objs = append(objs, deepCopy(obj))
		}
	}
	s.mu.Unlock()
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		var v T
		b, _ := json.Marshal(o)
		if json.Unmarshal(b, &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// Writes is the number of API PUTs served successfully (updates and creates).
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Seed loads {pathType}/*.json from fsys: each file holds one object or an
// array of objects; an object without an id takes the file's name. What is
// seeded is also what POST /sandbox/reset restores.
func (s *Server) Seed(fsys fs.FS) error {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	loaded := map[string]map[string]map[string]any{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		typ := e.Name()
		if _, ok := pathTypes[typ]; !ok {
			return fmt.Errorf("seed: unknown path type directory %q", typ)
		}
		files, err := fs.Glob(fsys, typ+"/*.json")
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		for _, f := range files {
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				return fmt.Errorf("seed: %w", err)
			}
			var objs []map[string]any
			if err := json.Unmarshal(b, &objs); err != nil {
				var one map[string]any
				if err := json.Unmarshal(b, &one); err != nil {
					return fmt.Errorf("seed %s: %w", f, err)
				}
				objs = []map[string]any{one}
			}
			for _, o := range objs {
				if str(o["id"]) == "" {
					o["id"] = strings.TrimSuffix(path.Base(f), ".json")
				}
				if !idPattern.MatchString(str(o["id"])) {
					return fmt.Errorf("seed %s: invalid id %q", f, str(o["id"]))
				}
				if loaded[typ] == nil {
					loaded[typ] = map[string]map[string]any{}
				}
				loaded[typ][str(o["id"])] = o
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seed == nil {
		s.seed = map[string]map[string]map[string]any{}
	}
	for typ, objs := range loaded {
		for id, o := range objs {
			if s.seed[typ] == nil {
				s.seed[typ] = map[string]map[string]any{}
			}
			s.seed[typ][id] = o
			s.store(typ, deepCopy(o))
		}
	}
	return nil
}

// restoreSeed puts back the seeded objects and nothing else.
func (s *Server) restoreSeed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects = map[string]map[string]map[string]any{}
	s.writes = 0
	s.behave = DefaultBehaviour()
	for typ, objs := range s.seed {
		for _, o := range objs {
			s.store(typ, deepCopy(o))
		}
	}
}

// store requires s.mu.
func (s *Server) store(typ string, obj map[string]any) {
	if s.objects[typ] == nil {
		s.objects[typ] = map[string]map[string]any{}
	}
	s.objects[typ][str(obj["id"])] = obj
}

func (s *Server) stamp() string { return s.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

func toMap(obj any) (map[string]any, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, errors.New("object must marshal to a JSON object")
	}
	return m, nil
}

func sortedIDs(m map[string]map[string]any) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// merge deep-merges src into dst: nested objects merge, anything else
// (arrays, scalars, null) replaces.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return deepCopy(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopyValue(e)
		}
		return out
	default:
		return v
	}
}

func setDefault(m map[string]any, k string, v any) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)[:n]
}
