// Package worker turns callouts into deduplicated sync tasks and runs them:
// the enqueuer (epochs and coalescing), the asynq handler, the
// per-subscription lock, the retry policy and the one place that records
// outcomes.
package worker

import (
	"encoding/json"
	"time"

	"github.com/zsync/zsync/syncer"
)

// Queue names. Callouts win over bulk re-syncs by weight.
const (
	QueueCallouts = "callouts"
	QueueBulk     = "bulk"
)

// EnqueueStatus is what happened to a callout at the ingress.
type EnqueueStatus string

const (
	// Enqueued: a new sync task was created.
	Enqueued EnqueueStatus = "enqueued"
	// Coalesced: a task that has not started reading Zuora already exists for
	// the subscription; it will see this change.
	Coalesced EnqueueStatus = "coalesced"
	// SkippedStatus: the loop guard dropped the callout (Limio made the change).
	SkippedStatus EnqueueStatus = "skipped"
)

// Record is one recorded outcome: the latest per subscription, its history
// and the global stream all hold these.
type Record struct {
	Subscription   string          `json:"subscription"`  // Zuora subscription number when known, else the id as given
	Key            string          `json:"key,omitempty"` // the id the task was enqueued with
	LimioID        string          `json:"limio_id,omitempty"`
	Outcome        syncer.Result   `json:"outcome"`
	Changes        []syncer.Change `json:"changes"` // always a list in JSON (MarshalJSON)
	Reason         string          `json:"reason,omitempty"`
	Error          string          `json:"error,omitempty"`
	Archived       bool            `json:"archived,omitempty"` // the task will not be retried (asynqmon can re-run it)
	At             time.Time       `json:"at"`
	DurationMS     int64           `json:"duration_ms"`
	TaskID         string          `json:"task_id,omitempty"`
	Queue          string          `json:"queue,omitempty"`
	Attempt        int             `json:"attempt"`
	Epoch          int64           `json:"epoch"`
	Trigger        syncer.Trigger  `json:"trigger"`
	NotificationID string          `json:"notification_id,omitempty"`
}

// MarshalJSON writes Changes as [] rather than null when there are none.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	p := plain(r)
	if p.Changes == nil {
		p.Changes = []syncer.Change{}
	}
	return json.Marshal(p)
}

// Older drops the first records of hist that are latest itself: a record is
// stored both as the latest and at the head of the history, and a reader
// showing both would show it twice.
func Older(latest *Record, hist []Record) []Record {
	out := hist
	if latest != nil && len(out) > 0 && sameRecord(*latest, out[0]) {
		out = out[1:]
	}
	if out == nil {
		out = []Record{}
	}
	return out
}

func sameRecord(a, b Record) bool {
	return a.At.Equal(b.At) && a.TaskID == b.TaskID && a.Outcome == b.Outcome && a.Attempt == b.Attempt && a.Key == b.Key
}
