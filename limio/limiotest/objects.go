package limiotest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio"
)

// The Objects API as the sandbox serves it: get, partial put (and the assumed
// create), list with queryMore, related objects, timeline events; and the
// object store they share.

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.serveObject(w, r, func(w http.ResponseWriter) { s.WriteError(w, http.StatusNotFound, "Not Found") })
}

// serveObject answers the stored object the request's path names, or what
// notFound answers when there is none (the API and the admin side differ).
func (s *Server) serveObject(w http.ResponseWriter, r *http.Request, notFound func(http.ResponseWriter)) {
	typ, id, ok := s.pathArgs(w, r)
	if !ok {
		return
	}
	obj, found := s.Get(typ, id)
	if !found {
		notFound(w)
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
		if want, _ := limio.RecordType(typ); want != "" && rt != want {
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
			if rt, _ := limio.RecordType(t); rt != "" {
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

// store requires s.mu.
func (s *Server) store(typ string, obj map[string]any) {
	if s.objects[typ] == nil {
		s.objects[typ] = map[string]map[string]any{}
	}
	s.objects[typ][str(obj["id"])] = obj
}

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
