package limio

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zsync/zsync/internal/field"
	"github.com/zsync/zsync/internal/upstream"
)

// Dialect is the one seam for what zsync assumes about a Limio tenant's
// Objects API where no public source confirms it (README "Assumptions about
// the real APIs"). Each field picks between the assumption and the
// alternative `zsync check` may call for; the zero Dialect is zsync's
// assumptions, which the sandbox follows by default.
//
// Creating by PUT to a new id has no documented alternative: when a tenant
// answers it with 404, Create fails with a permanent error naming the
// assumption (AssumptionPutCreates) instead of reading as "not found".
type Dialect struct {
	// StatusField is where a write puts, and a read takes, an object's status:
	// StatusTopLevel ("status", beside data; the default) or StatusInData
	// ("data.status": Limio documents only name and data in a PUT body).
	StatusField string
	// RelatedPath is the path type of the related-objects endpoint:
	// RelatedSingular ("subscription", as third parties observed; the
	// default) or RelatedPlural ("subscriptions", the documented path type).
	RelatedPath string
	// SchedulesFrom is where a subscription's schedule entries are read:
	// SchedulesRelated (in /related; the default) or SchedulesList (the
	// /schedules listing, filtered to the subscription by its summaries'
	// "related", then each entry read in full: a scan of every entry of the
	// tenant per sync, for tenants whose /related has none).
	SchedulesFrom string
	// Lookup is how the index's scan finds a subscription by Zuora number:
	// LookupSummary (list summaries carry reference or data.zuora; the
	// default) or LookupFull (each listed subscription whose summary lacks
	// data.zuora is read in full: one GET per subscription, once per scan).
	Lookup string
}

// Dialect values.
const (
	StatusTopLevel   = "status"
	StatusInData     = "data.status"
	RelatedSingular  = "subscription"
	RelatedPlural    = "subscriptions"
	SchedulesRelated = "related"
	SchedulesList    = "list"
	LookupSummary    = "summary"
	LookupFull       = "full"
)

// Assumption names, shared by `zsync check`, the sandbox's behaviour
// switches and the errors a sync fails with when one is false.
const (
	AssumptionPutCreates       = "put_creates"       // a PUT to a new id creates the object
	AssumptionPutStatus        = "put_status"        // a PUT takes a top-level status
	AssumptionRelatedSchedules = "related_schedules" // /related returns the schedule entries
	AssumptionSummaryZuora     = "summary_zuora"     // list summaries carry reference or data.zuora
	AssumptionRelatedPath      = "related_path"      // the related endpoint's path type
)

// WithDefaults fills empty fields with zsync's assumptions.
func (d Dialect) WithDefaults() Dialect {
	if d.StatusField == "" {
		d.StatusField = StatusTopLevel
	}
	if d.RelatedPath == "" {
		d.RelatedPath = RelatedSingular
	}
	if d.SchedulesFrom == "" {
		d.SchedulesFrom = SchedulesRelated
	}
	if d.Lookup == "" {
		d.Lookup = LookupSummary
	}
	return d
}

// Validate names the config key (limio.*) of a value it doesn't know.
func (d Dialect) Validate() error {
	d = d.WithDefaults()
	var errs field.Errors
	for _, c := range []struct{ key, v, a, b string }{
		{"limio.status_field", d.StatusField, StatusTopLevel, StatusInData},
		{"limio.related_path", d.RelatedPath, RelatedSingular, RelatedPlural},
		{"limio.schedules_from", d.SchedulesFrom, SchedulesRelated, SchedulesList},
		{"limio.lookup", d.Lookup, LookupSummary, LookupFull},
	} {
		if c.v != c.a && c.v != c.b {
			errs.Add(c.key, "must be %s or %s, not %q (zsync check says which)", c.a, c.b, c.v)
		}
	}
	return errs.Err()
}

// NewAssumptionError says a Limio tenant does not behave as zsync assumes. It
// is permanent (it unwraps to a permanent *upstream.Error, which every
// classifier already reads): a retry meets the same tenant. Its message names
// the assumption and what settles it.
// op is the request that showed it (its status, 0 for none).
func NewAssumptionError(op, assumption string, status int, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	return &AssumptionError{Name: assumption, Err: &upstream.Error{API: api, Op: op, StatusCode: status,
		Kind: upstream.Permanent, Message: "assumption " + assumption + " does not hold on this tenant: " + msg + " (run zsync check)"}}
}

// assumptionFrom is NewAssumptionError for an API answer that showed it: the
// answer stays in the chain (a 404 is still visible as one), after the
// permanent error that classifies it.
func assumptionFrom(cause *upstream.Error, assumption, format string, a ...any) error {
	err := NewAssumptionError(cause.Op, assumption, cause.StatusCode, format, a...).(*AssumptionError)
	err.Err.Err, err.Err.RequestID = cause, cause.RequestID
	return err
}

// AssumptionError is a failure that shows an assumption about the tenant is
// false. Name is one of the Assumption* constants.
type AssumptionError struct {
	Name string
	Err  *upstream.Error
}

func (e *AssumptionError) Error() string { return e.Err.Error() }
func (e *AssumptionError) Unwrap() error { return e.Err }

// AssumptionOf returns the name of the failed assumption err carries, or "".
func AssumptionOf(err error) string {
	var a *AssumptionError
	if errors.As(err, &a) {
		return a.Name
	}
	return ""
}

// statusPatch moves a patch's status (FieldStatus) to where the dialect
// writes it.
func (d Dialect) statusPatch(p Patch) Patch {
	if d.StatusField == StatusTopLevel {
		return p
	}
	v, ok := p.Get(FieldStatus)
	if !ok {
		return p
	}
	var out Patch
	for _, f := range p.Fields() {
		if f == FieldStatus {
			continue
		}
		fv, _ := p.Get(f)
		out.Set(f, fv)
	}
	out.Set(d.StatusField, v)
	return out
}

// statusBody moves a full object's top-level status under data when the
// dialect says so.
func (d Dialect) statusBody(body map[string]any) {
	if d.StatusField == StatusTopLevel {
		return
	}
	st, ok := body[FieldStatus]
	if !ok {
		return
	}
	delete(body, FieldStatus)
	data, _ := body["data"].(map[string]any)
	if data != nil {
		data[strings.TrimPrefix(d.StatusField, "data.")] = st
	}
}

// readStatus is the status an object read carries under the dialect: the
// envelope's, or data.status when the dialect writes there and the object
// has one (objects Limio made itself carry their status at the top).
func (d Dialect) readStatus(env *Envelope, dataStatus string) {
	if d.StatusField == StatusInData && dataStatus != "" {
		env.Status = dataStatus
	}
}
