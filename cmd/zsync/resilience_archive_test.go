package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// sweepOff writes a configuration file that turns the periodic sweep off
// (an empty value in the environment reads as unset), for `--config`.
func sweepOff(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "zsync.yaml")
	if err := os.WriteFile(p, []byte("sweep:\n  schedule: \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// postCallout sends one callout for id the way Zuora does and returns the
// answer's status ("enqueued", "coalesced"…) and task id.
func postCallout(t *testing.T, base, id string) (string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/plugins/zuora/sync/subscription/"+id, nil)
	req.SetBasicAuth(testCalloutUser, testCalloutPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("callout %s: %v", id, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		TaskID string `json:"task_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("callout %s: %d %+v %v", id, resp.StatusCode, body, err)
	}
	return body.Status, body.TaskID
}

// TestResilienceArchivedOrDeletedTaskDoesNotHoldCallouts: an operator
// archives or deletes, through asynqmon's own HTTP API on the ingress, a
// pending and a scheduled sync task. The next callout for each subscription
// gets a task that runs (not "coalesced" into the dead one), and a `zsync
// work` process started then (sweep off) brings every subscription to
// Zuora's state after that callout.
func TestResilienceArchivedOrDeletedTaskDoesNotHoldCallouts(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	zs, ls := zuoratest.NewServer(t), limiotest.NewServer(t)
	changed := initialState()
	changed.Rev, changed.City, changed.AutoRenew = 1, "Leeds", false
	cases := []struct {
		state  string // asynq state of the task when the operator acts
		action string // "archive" or "delete"
	}{
		{"pending", "archive"}, {"pending", "delete"}, {"scheduled", "archive"}, {"scheduled", "delete"},
	}
	states := map[int][]subState{}
	for i := range cases {
		putSub(t, zs, i, initialState())
		states[i] = []subState{changed}
	}
	want := reference(t, states)

	addr := freeAddr(t)
	base := "http://" + addr
	cfgFile := sweepOff(t)
	// A long coalesce window keeps a task scheduled while the test acts on it.
	env := upstreamEnv(rs, zs, ls, "ZSYNC_HTTP_ADDR="+addr,
		"ZSYNC_CALLOUT_USERNAME="+testCalloutUser, "ZSYNC_CALLOUT_PASSWORD="+testCalloutPass,
		"ZSYNC_OPERATOR_TOKEN="+testOperatorTok, "ZSYNC_WORKER_COALESCE_WINDOW=1h")
	srv := startProc(t, "serve", env, "serve", "--config", cfgFile)
	waitHTTP(t, srv, base+"/healthz", 30*time.Second)

	monitor := func(method, path string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/monitor/api/queues/"+worker.QueueCallouts+"/"+path, nil)
		req.Header.Set("Authorization", "Bearer "+testOperatorTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("asynqmon %s %s: %v", method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("asynqmon %s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	in := inspector(t, rs)
	epochKey := func(i int) string { return worker.DefaultPrefix + "epoch:" + subNumber(i) }
	final := map[int]string{}
	for i, c := range cases {
		if c.state == "scheduled" {
			// As if a sync had just started: the callout's task is held back
			// for the coalesce window.
			now, err := rdb.Time(t.Context()).Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := rdb.HSet(t.Context(), epochKey(i), "s", strconv.FormatInt(now.UnixMilli(), 10)).Err(); err != nil {
				t.Fatal(err)
			}
		}
		st, id := postCallout(t, base, subNumber(i))
		if st != string(worker.Enqueued) {
			t.Fatalf("%s: first callout %s", subNumber(i), st)
		}
		if info, err := in.GetTaskInfo(worker.QueueCallouts, id); err != nil || info.State.String() != c.state {
			t.Fatalf("%s: task %s: %v; want %s", subNumber(i), id, taskState(info, err), c.state)
		}
		if c.action == "archive" {
			monitor(http.MethodPost, c.state+"_tasks/"+id+":archive")
		} else {
			monitor(http.MethodDelete, c.state+"_tasks/"+id)
		}
		if c.state == "scheduled" {
			// No sync is running really: let the next task go at once.
			if err := rdb.HDel(t.Context(), epochKey(i), "s").Err(); err != nil {
				t.Fatal(err)
			}
		}
		putSub(t, zs, i, changed)
		st, next := postCallout(t, base, subNumber(i))
		if st != string(worker.Enqueued) {
			t.Errorf("%s: callout after %s of the %s task %s answered %s (task %s); want a new task enqueued",
				subNumber(i), c.action, c.state, id, st, next)
		}
		if info, err := in.GetTaskInfo(worker.QueueCallouts, next); err != nil || info.State != asynq.TaskStatePending {
			t.Errorf("%s: task %s after the %s: %v; want pending", subNumber(i), next, c.action, taskState(info, err))
		}
		final[i] = next
	}

	startProc(t, "work", upstreamEnv(rs, zs, ls), "work", "--config", cfgFile)
	converged(t, ls, want, 30*time.Second)
	store := worker.NewOutcomeStore(rdb, worker.StoreConfig{})
	for i, id := range final {
		eventually(t, 10*time.Second, "the outcome of "+id, func() bool {
			r, err := store.Latest(t.Context(), subNumber(i))
			return err == nil && r != nil && r.TaskID == id && r.Error == ""
		})
	}
}

// taskState names a task's state, or the error reading it.
func taskState(info *asynq.TaskInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	return info.State.String()
}
