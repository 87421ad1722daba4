package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// runZsync runs a one-shot subcommand of the built binary and returns its
// stdout, stderr and exit status.
func runZsync(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, zsyncBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("zsync %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// scrapeURL GETs a Prometheus endpoint with the operator token ("" for none)
// and returns its status and samples (name{labels} → value).
func scrapeURL(t *testing.T, url, token string) (int, map[string]float64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return resp.StatusCode, out
}

// limioPuts counts the writes the Limio sandbox received.
func limioPuts(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/sandbox/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reqs struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reqs); err != nil {
		t.Fatal(err)
	}
	n := 0
	for k, v := range reqs.Counts {
		if strings.HasPrefix(k, "PUT ") {
			n += v
		}
	}
	return n
}

// TestPlanStatusMetricsAndSweepProcesses: `zsync plan` shows the renewal
// without writing; a manual sync through `zsync serve` and `zsync work` is
// then shown by `zsync status`; both processes' /metrics (the worker's on
// worker.metrics_addr) count it; a second worker with a fast sweep syncs a
// subscription nobody called out for.
func TestPlanStatusMetricsAndSweepProcesses(t *testing.T) {
	t.Parallel()
	metricsAddr := freeAddr(t)
	s := startStack(t, "ZSYNC_WORKER_METRICS_ADDR="+metricsAddr)
	const renewed, renewedID = "A-S00000201", "sub-seed00000000000000000000000001"

	out, stderr, code := runZsync(t, s.env, "plan", renewed)
	if code != 0 {
		t.Fatalf("zsync plan: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{
		renewed + " (Limio " + renewedID + "): a sync would record updated",
		"\nsubscription " + renewedID + "\n",
		"data.termEndDate: 2026-12-01 → 2027-12-01",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("zsync plan output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runZsync(t, s.env, "plan", "--json", renewed)
	var plan struct {
		Outcome string `json:"outcome"`
		Changes []struct{ Object, Field, Old, New string }
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil || code != 0 {
		t.Fatalf("zsync plan --json: exit %d, %v:\n%s", code, err, out)
	}
	found := false
	for _, c := range plan.Changes {
		found = found || (c.Field == "data.termEndDate" && c.Old == "2026-12-01" && c.New == "2027-12-01")
	}
	if plan.Outcome != "updated" || !found {
		t.Fatalf("zsync plan --json: %+v", plan)
	}
	if n := limioPuts(t, s.limio); n != 0 {
		t.Fatalf("zsync plan wrote to Limio: %d PUTs", n)
	}
	if _, _, code := runZsync(t, s.env, "plan", "not an id"); code != 2 {
		t.Errorf("zsync plan with a bad id: exit %d; want 2", code)
	}

	// Nothing recorded yet.
	if _, stderr, code := runZsync(t, s.env, "status", renewed); code != 1 || !strings.Contains(stderr, "no sync recorded") {
		t.Errorf("zsync status before any sync: exit %d, %s", code, stderr)
	}
	if status, _ := s.operator(t, http.MethodPost, "/v1/subscriptions/"+renewed+"/sync"); status != http.StatusAccepted {
		t.Fatalf("manual sync: %d", status)
	}
	eventually(t, 30*time.Second, "the sync recorded", func() bool {
		_, out := s.operator(t, http.MethodGet, "/v1/subscriptions/"+renewed+"/sync")
		l, _ := out["latest"].(map[string]any)
		return l["outcome"] == "updated"
	})
	if n := limioPuts(t, s.limio); n == 0 {
		t.Fatal("the Limio sandbox counted no PUT after an updated sync")
	}
	out, stderr, code = runZsync(t, s.env, "status", renewed)
	if code != 0 || !strings.Contains(out, renewed+" (Limio "+renewedID+"): updated at ") ||
		!strings.Contains(out, "data.termEndDate: 2026-12-01 → 2027-12-01") || strings.Contains(out, "history (newest first):") {
		// One sync so far: the latest, and no history repeating it.
		t.Fatalf("zsync status: exit %d\n%s%s", code, out, stderr)
	}
	out, _, code = runZsync(t, s.env, "status", "--json", "-n", "5", renewedID) // any id form
	var st struct {
		Latest struct {
			Outcome string `json:"outcome"`
			Trigger struct {
				Source   string    `json:"source"`
				Received time.Time `json:"received"`
			} `json:"trigger"`
		} `json:"latest"`
		History []json.RawMessage `json:"history"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("zsync status --json: exit %d, %v:\n%s", code, err, out)
	}
	if st.Latest.Outcome != "updated" || len(st.History) != 0 || st.Latest.Trigger.Source != "manual" || st.Latest.Trigger.Received.IsZero() {
		t.Fatalf("zsync status --json: %s", out)
	}

	// The worker's /metrics: operator only, counting the sync.
	if code, _ := scrapeURL(t, "http://"+metricsAddr+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("worker /metrics without credentials: %d; want 401", code)
	}
	code, wm := scrapeURL(t, "http://"+metricsAddr+"/metrics", e2eOperator)
	if code != http.StatusOK {
		t.Fatalf("worker /metrics: %d", code)
	}
	for k, least := range map[string]float64{
		`zsync_syncs_total{outcome="updated",queue="callouts"}`:                                    1,
		`zsync_upstream_requests_total{api="zuora",op="GET /v1/subscriptions/{key}",status="200"}`: 1,
		`zsync_event_to_sync_seconds_count{source="manual"}`:                                       1,
	} {
		if wm[k] < least {
			t.Errorf("worker %s = %v; want ≥ %v", k, wm[k], least)
		}
	}
	limioWrites := 0.0
	for k, v := range wm {
		if strings.HasPrefix(k, `zsync_upstream_requests_total{api="limio",op="PUT `) {
			limioWrites += v
		}
	}
	if limioWrites < 1 {
		t.Errorf("worker /metrics counts no Limio PUT after an updated sync")
	}
	_, im := scrapeURL(t, s.ingress+"/metrics", e2eOperator)
	if im[`zsync_enqueues_total{queue="callouts",status="enqueued"}`] != 1 {
		t.Errorf("ingress enqueues: %v", im[`zsync_enqueues_total{queue="callouts",status="enqueued"}`])
	}
	if _, ok := im[`asynq_queue_size{queue="callouts"}`]; !ok {
		t.Errorf("ingress /metrics lacks asynq's queue series")
	}

	// A second worker sweeping every second finds the seeded subscriptions
	// (changed "now" in the sandbox) and syncs them with nobody calling out.
	startProc(t, "work-sweep", append(append([]string{}, s.env...),
		"ZSYNC_SWEEP_SCHEDULE=@every 1s", "ZSYNC_SWEEP_LOOKBACK=1h", "ZSYNC_WORKER_METRICS_ADDR="+freeAddr(t)), "work")
	eventually(t, 30*time.Second, "the sweep synced A-S00000202", func() bool {
		out, _, code := runZsync(t, s.env, "status", "--json", "A-S00000202")
		return code == 0 && strings.Contains(out, `"source": "sweep"`) && strings.Contains(out, `"outcome": "updated"`)
	})
}

// TestMonitorServesUIAndRerunsThroughTheHandler: the real asynqmon behind
// the ingress answers the operator only; an archived sync re-run from its API
// is processed by the normal handler, which still waits for the
// subscription's lock and records the outcome.
func TestMonitorServesUIAndRerunsThroughTheHandler(t *testing.T) {
	t.Parallel()
	const token = "operator-token-monitor"
	st := startInProcess(t, "callout-pass", token, nil)
	c, rdb, zs := st.cfg, st.rdb, st.zs

	do := func(method, path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, st.url+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/monitor", "/monitor/", "/monitor/queues/callouts"} {
		if code, body := do(http.MethodGet, p, token); code != http.StatusOK || !strings.Contains(body, "<html") {
			t.Errorf("GET %s as operator: %d %.80q; want asynqmon's UI", p, code, body)
		}
		if code, _ := do(http.MethodGet, p, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s anonymous: %d; want 401", p, code)
		}
	}
	if code, _ := do(http.MethodGet, "/monitor/api/queues", ""); code != http.StatusUnauthorized {
		t.Errorf("asynqmon API anonymous: %d; want 401", code)
	}

	// A permanent Zuora error archives the sync.
	const sub = "A-S00000201"
	zs.AddFault(sandbox.Fault{Method: http.MethodGet, Path: "/v1/subscriptions/" + sub, Status: http.StatusBadRequest})
	code, body := do(http.MethodPost, "/v1/subscriptions/"+sub+"/sync", token)
	var enq struct {
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(body), &enq); err != nil || code != http.StatusAccepted || enq.TaskID == "" {
		t.Fatalf("manual sync: %d %s", code, body)
	}
	outcomes := worker.NewOutcomeStore(rdb, workerConfig(c).StoreConfig())
	store := func(id string) *worker.Record {
		r, err := outcomes.Latest(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// The outcome is recorded before asynq moves the task to archived: wait
	// for both, or asynqmon's "run" finds the task still active.
	insp := asynq.NewInspectorFromRedisClient(rdb)
	eventually(t, 20*time.Second, "the sync archived", func() bool {
		r := store(sub)
		info, err := insp.GetTaskInfo(worker.QueueCallouts, enq.TaskID)
		return r != nil && r.Outcome == syncer.Failed && r.Archived && r.TaskID == enq.TaskID &&
			err == nil && info.State == asynq.TaskStateArchived
	})
	zs.ClearFaults()

	// Another run holds the subscription's lock: the re-run must wait for it.
	lockTTL := 1500 * time.Millisecond
	if err := rdb.Set(t.Context(), workerConfig(c).Prefix+"lock:"+sub, "another-run", lockTTL).Err(); err != nil {
		t.Fatal(err)
	}
	locked := time.Now()
	if code, body := do(http.MethodPost, "/monitor/api/queues/callouts/archived_tasks/"+enq.TaskID+":run", token); code/100 != 2 {
		t.Fatalf("asynqmon run: %d %s", code, body)
	}
	var rerun *worker.Record
	eventually(t, 20*time.Second, "the re-run recorded", func() bool {
		rerun = store(sub)
		return rerun != nil && rerun.Outcome == syncer.Updated
	})
	if rerun.TaskID != enq.TaskID {
		t.Errorf("re-run recorded by task %s; want the archived task %s", rerun.TaskID, enq.TaskID)
	}
	if rerun.At.Before(locked.Add(lockTTL - 100*time.Millisecond)) {
		t.Errorf("the re-run started %v after the lock was taken; it must wait for the lock (%v)", rerun.At.Sub(locked), lockTTL)
	}
	// The archived task closed its epoch: a new request makes a new task.
	code, body = do(http.MethodPost, "/v1/subscriptions/"+sub+"/sync", token)
	if code != http.StatusAccepted || !strings.Contains(body, `"status":"enqueued"`) || strings.Contains(body, enq.TaskID) {
		t.Errorf("sync after the re-run: %d %s; want a new task", code, body)
	}
	_, sm := scrapeURL(t, st.url+"/metrics", token)
	if sm[`zsync_lock_waits_total{queue="callouts"}`] < 1 || sm[`zsync_syncs_total{outcome="failed",queue="callouts"}`] != 1 {
		t.Errorf("metrics: lock waits %v, failed %v", sm[`zsync_lock_waits_total{queue="callouts"}`],
			sm[`zsync_syncs_total{outcome="failed",queue="callouts"}`])
	}
}

// TestOperationsDocCommands: every zsync command line in docs/operations.md
// names a real subcommand with real flags (checked with --help, which parses
// the flags without running anything).
func TestOperationsDocCommands(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, m := range regexp.MustCompile("`(zsync [^`]+)`").FindAllStringSubmatch(string(raw), -1) {
		cmds = append(cmds, m[1])
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "zsync ") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) < 8 {
		t.Fatalf("found only %d commands in the runbook", len(cmds))
	}
	for _, line := range cmds {
		line, _, _ = strings.Cut(line, "#")
		args := strings.Fields(line)[1:]
		root := newRootCmd()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append(args, "--help"))
		sub, _, err := root.Find(args)
		if err != nil || sub == root {
			t.Errorf("%q: no such subcommand", line)
			continue
		}
		if err := root.Execute(); err != nil {
			t.Errorf("%q: %v", line, err)
		}
	}
}
