package syncer

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Result is what one sync did to a subscription.
type Result string

// The outcomes a sync records (docs/design.md "Outcomes").
const (
	Created   Result = "created"   // Limio didn't know the subscription; it does now
	Updated   Result = "updated"   // Limio was changed; Outcome.Changes says how
	Unchanged Result = "unchanged" // Limio already matched Zuora; nothing written
	Skipped   Result = "skipped"   // loop guard: the change was made by Limio itself
	NotFound  Result = "not_found" // unknown to Zuora (and to Limio)
	Failed    Result = "failed"    // an error; set by the worker, never by Sync
)

// Results are every Result, in the order above: for the series and counts
// that must name each one from the start.
func Results() []Result { return []Result{Created, Updated, Unchanged, Skipped, NotFound, Failed} }

// ErrorResult is the Result a run that ended in err records: NotFound when
// err wraps ErrNotFound (neither system knows the key), Failed otherwise.
// The worker, the plan endpoint and the audit all decide it here.
func ErrorResult(err error) Result {
	if errors.Is(err, ErrNotFound) {
		return NotFound
	}
	return Failed
}

// Trigger says why a sync runs. The callout body decides whether to sync,
// never what to write: every sync reads fresh state.
type Trigger struct {
	Source          string `json:"source"`                     // callout | manual | bulk | sweep
	EventType       string `json:"event_type,omitempty"`       // e.g. RenewSubscription
	OrderNumber     string `json:"order_number,omitempty"`     // the order that made the change
	CreatedByID     string `json:"created_by_id,omitempty"`    // the order's creator (Zuora user id)
	OrderSource     string `json:"order_source,omitempty"`     // Source__c
	InitiatedSource string `json:"initiated_source,omitempty"` // InitiatedSource__c
	NotificationID  string `json:"notification_id,omitempty"`  // Zuora-Notification-Id
	// Received is when the ingress took the request (the first of those a
	// task coalesced), for the event-to-sync lag metric; zero for bulk and sweep.
	Received time.Time `json:"received,omitzero"`
}

// Trigger sources.
const (
	SourceCallout = "callout"
	SourceManual  = "manual"
	SourceBulk    = "bulk"
	SourceSweep   = "sweep"
)

// Change is one field of one Limio object that a sync sets.
type Change struct {
	Object string `json:"object"`        // subscription | customer | address | schedule
	ID     string `json:"id"`            // the Limio object id (deterministic for created objects)
	Op     string `json:"op"`            // create | update | cancel
	Field  string `json:"field"`         // e.g. data.termEndDate, status
	Old    string `json:"old,omitempty"` // as text; "" when absent
	New    string `json:"new,omitempty"`
}

// Change ops.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpCancel = "cancel"
)

func (c Change) String() string {
	return fmt.Sprintf("%s %s %s %s: %q → %q", c.Op, c.Object, c.ID, c.Field, c.Old, c.New)
}

// Outcome is the result of one sync or dry run.
type Outcome struct {
	Subscription string   `json:"subscription"`       // Zuora subscription number: the canonical key
	LimioID      string   `json:"limio_id,omitempty"` // sub-…
	Result       Result   `json:"outcome"`
	Changes      []Change `json:"changes"`          // always a list in JSON, [] when none
	Reason       string   `json:"reason,omitempty"` // why skipped / not found
}

// MarshalJSON writes Changes as [] rather than null when there are none, so
// every reader sees one type.
func (o Outcome) MarshalJSON() ([]byte, error) {
	type plain Outcome
	p := plain(o)
	if p.Changes == nil {
		p.Changes = []Change{}
	}
	return json.Marshal(p)
}

// ErrNotFound is returned (wrapped) with a NotFound outcome: neither Zuora
// nor Limio knows the key. It is permanent.
var ErrNotFound = errors.New("subscription not found")

// PermanentError marks an error that will fail the same way on retry (bad
// data, a 4xx from an API): the worker archives the task instead of retrying.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as permanent.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err was marked permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
