package limiotest

import (
	"net/http"
	"strconv"

	"github.com/zsync/zsync/internal/sandbox"
)

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
