package limiotest

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio"
)

// The sandbox's own side: /sandbox/objects, and the Go methods tests and
// `zsync sandbox` use to seed and inspect objects.

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
	s.serveObject(w, r, func(w http.ResponseWriter) {
		sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	})
}

// Put stores obj (any value that marshals to a JSON object with an id) under
// pathType as given, replacing what was there. It counts as no write.
func (s *Server) Put(pathType string, obj any) error {
	if _, ok := limio.RecordType(pathType); !ok {
		return fmt.Errorf("unknown path type %q", pathType)
	}
	m, err := toMap(obj)
	if err != nil {
		return err
	}
	id := str(m["id"])
	if !limio.ValidID(id) {
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
		if _, ok := limio.RecordType(typ); !ok {
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
				if !limio.ValidID(str(o["id"])) {
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
