package worker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/syncer"
)

// asynqmon's ID column shows a task id up to its first '-'; every id reads
// whole there, and reads back to its key and epoch (the epoch protocol
// depends on it), in the new spelling and in the one before it.
func TestTaskIDsReadWholeInAsynqmon(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"A-S00000201", "sub-5c3d6e2f1a9b4c7d8e0f1a2b3c4d5e6f", "ABCDEF123456"} {
		id := taskID(key, 7)
		if strings.Contains(id, "-") {
			t.Errorf("taskID(%s) = %q: asynqmon would cut it at the '-'", key, id)
		}
		if strings.ReplaceAll(id, "\u2011", "-") != key+":7" {
			t.Errorf("taskID(%s) = %q; want the key with non-breaking hyphens, then :7", key, id)
		}
		if e := epochOf(id, key); e != 7 {
			t.Errorf("epochOf(%q) = %d", id, e)
		}
		if e := epochOf(key+":7", key); e != 7 {
			t.Errorf("epochOf(old spelling %q) = %d", key+":7", e)
		}
		for _, spelled := range []string{id, key + ":7"} {
			k, e, ok := taskEpoch(spelled, []byte("not json"))
			if !ok || k != key || e != 7 {
				t.Errorf("taskEpoch(%q, broken payload) = %q %d %v; want %s 7", spelled, k, e, ok, key)
			}
		}
	}
	if epochOf(taskID("A-S1", 3), "A-S12") >= 0 || epochOf("A-S1:x", "A-S1") >= 0 {
		t.Error("epochOf read an epoch from another key's id or a bad epoch")
	}
	if validateKey("A\u2011S1") == nil {
		t.Error("a key with the id's hyphen is accepted: its task id could not be read back")
	}
}

// A completed task's result, which asynqmon shows on every row, is the
// outcome's summary (a count of changes), not the whole record; the record
// in the store keeps every change, and its changes are always a list.
func TestTaskResultIsCompact(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.Retention = time.Hour })
	e.startServer(t)
	const key = "A-S00000301"
	e.fake.bump(key)
	_, id := e.enqueue(t, key, callout)
	var info *asynq.TaskInfo
	waitFor(t, 10*time.Second, "the task completed", func() bool {
		info, _ = e.insp.GetTaskInfo(QueueCallouts, id)
		return info != nil && info.State == asynq.TaskStateCompleted
	})
	var res map[string]any
	if err := json.Unmarshal(info.Result, &res); err != nil {
		t.Fatalf("result %q: %v", info.Result, err)
	}
	if res["outcome"] != string(syncer.Updated) || res["subscription"] != key || res["changes"] != float64(1) {
		t.Errorf("result = %s; want outcome, subscription and the number of changes", info.Result)
	}
	if _, ok := res["trigger"]; ok {
		t.Errorf("result = %s; want the summary only", info.Result)
	}
	rec, err := e.store.Latest(t.Context(), key)
	if err != nil || rec == nil || len(rec.Changes) != 1 {
		t.Fatalf("stored record %+v, %v; want its change", rec, err)
	}

	// An unchanged run: "changes" is [] in the record's JSON, not absent or null.
	b, _ := json.Marshal(Record{Subscription: key, Outcome: syncer.Unchanged})
	if !strings.Contains(string(b), `"changes":[]`) {
		t.Errorf("record JSON %s; want \"changes\":[]", b)
	}
}

// The history shown beside the latest record doesn't repeat it.
func TestOlderDropsTheLatest(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	latest := Record{Subscription: "A-S1", Outcome: syncer.Updated, At: at, TaskID: "A\u2011S1:2"}
	older := Record{Subscription: "A-S1", Outcome: syncer.Unchanged, At: at.Add(-time.Hour), TaskID: "A\u2011S1:1"}
	if got := Older(&latest, []Record{latest, older}); len(got) != 1 || got[0].TaskID != older.TaskID {
		t.Errorf("Older = %+v; want only the older record", got)
	}
	if got := Older(&latest, []Record{older}); len(got) != 1 {
		t.Errorf("Older without the latest at the head = %+v; want it unchanged", got)
	}
	if got := Older(nil, nil); got == nil || len(got) != 0 {
		t.Errorf("Older(nil, nil) = %#v; want an empty list", got)
	}
}
