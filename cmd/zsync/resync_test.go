package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/worker"
)

// bulkEnv is a private Redis and both sandboxes (dev seed) as processes,
// and the environment that points zsync at them.
type bulkEnv struct {
	zuora, limio string // base URLs
	env          []string
	rs           *redistest.Server
}

func newBulkEnv(t *testing.T) *bulkEnv {
	t.Helper()
	rs := redistest.Start(t)
	za, la := freeAddr(t), freeAddr(t)
	p := startProc(t, "sandbox", nil, "sandbox", "--seed", "dev", "--zuora-addr", za, "--limio-addr", la)
	waitHTTP(t, p, "http://"+za+"/sandbox/requests", 15*time.Second)
	waitHTTP(t, p, "http://"+la+"/sandbox/requests", 15*time.Second)
	u := &bulkEnv{zuora: "http://" + za, limio: "http://" + la, rs: rs}
	u.env = []string{
		"ZSYNC_REDIS_ADDR=" + rs.Addr, fmt.Sprintf("ZSYNC_REDIS_DB=%d", rs.DB),
		"ZSYNC_ZUORA_BASE_URL=" + u.zuora, "ZSYNC_ZUORA_CLIENT_ID=sandbox", "ZSYNC_ZUORA_CLIENT_SECRET=sandbox",
		"ZSYNC_LIMIO_BASE_URL=" + u.limio, "ZSYNC_LIMIO_CLIENT_ID=sandbox", "ZSYNC_LIMIO_CLIENT_SECRET=sandbox",
		"ZSYNC_LOG_LEVEL=warn",
	}
	return u
}

type bulkRunResult struct {
	code           int
	stdout, stderr string
}

// run runs the binary to completion.
func (u *bulkEnv) run(t *testing.T, within time.Duration, stdin string, args ...string) bulkRunResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, zsyncBinary(t), args...)
	cmd.Env = append(os.Environ(), u.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := bulkRunResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.code = ee.ExitCode()
	default:
		t.Fatalf("zsync %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, r.stdout, r.stderr)
	}
	return r
}

func (u *bulkEnv) getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func (u *bulkEnv) fault(t *testing.T, base, body string) {
	t.Helper()
	resp, err := http.Post(base+"/sandbox/faults", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("add fault: %v %v", err, resp)
	}
	resp.Body.Close()
}

// limioPUTs counts the writes the Limio sandbox received.
func (u *bulkEnv) limioPUTs(t *testing.T) int {
	t.Helper()
	var r struct {
		Counts map[string]int `json:"counts"`
	}
	u.getJSON(t, u.limio+"/sandbox/requests", &r)
	n := 0
	for k, v := range r.Counts {
		if strings.HasPrefix(k, "PUT ") {
			n += v
		}
	}
	return n
}

func bulkWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const bulkIDFile = `# the dev seed
A-S00000201
A-S00000202

A-S00000203   # unknown to Limio
A-S00000204
not an id
A-S09999999
`

// TestResyncCommand runs `zsync resync FILE` against a worker process and the
// sandboxes: it waits for every id, prints the summary, exits non-zero for a
// failure, and Limio ends up in sync.
func TestResyncCommand(t *testing.T) {
	t.Parallel()
	u := newBulkEnv(t)
	// A-S00000204 fails for good: Zuora answers 400 for it.
	u.fault(t, u.zuora, `{"method":"GET","path":"/v1/subscriptions/A-S00000204","status":400}`)
	startProc(t, "work", u.env, "work")

	file := bulkWriteFile(t, "ids.txt", bulkIDFile)
	r := u.run(t, 60*time.Second, "", "resync", file, "--interval", "200ms")
	if r.code != 1 {
		t.Fatalf("exit status %d; want 1 (one failure)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"read 6, enqueued 5, coalesced 0, invalid 1",
		"created 1, updated 2, unchanged 0, skipped 0, not_found 1, failed 1",
		`invalid id "not an id"`,
		"failed A-S00000204:",
		"not_found A-S09999999",
		": done",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "1 subscriptions failed") {
		t.Errorf("stderr = %q", r.stderr)
	}
	// Limio now has Zuora's state: A-S00000202 was cancelled for bad debt.
	var sub struct {
		Status string `json:"status"`
	}
	u.getJSON(t, u.limio+"/sandbox/objects/subscriptions/sub-seed00000000000000000000000002", &sub)
	if sub.Status != "cancelled" {
		t.Errorf("Limio A-S00000202 status = %q; want cancelled", sub.Status)
	}

	// A clean run by Zuora query: everything is current now except the
	// subscription that keeps failing, so leave it out via stdin.
	r = u.run(t, 60*time.Second, "A-S00000201\nA-S00000202\nA-S00000203\n", "resync", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "created 0, updated 0, unchanged 3") {
		t.Fatalf("second run: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	// --no-wait returns once enqueued; bad invocations exit 2.
	r = u.run(t, 30*time.Second, "", "resync", "--status", "Active", "--no-wait")
	returned := strings.Contains(r.stdout, "syncing in the background") || strings.Contains(r.stdout, ": done")
	if r.code != 0 || !strings.Contains(r.stdout, "zuora query status=Active") || !returned {
		t.Fatalf("--no-wait: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// --timeout gives up waiting, not enqueueing: every id is in the job.
	r = u.run(t, 30*time.Second, "A-S00000201\nA-S00000202\nA-S00000203\n", "resync", "-", "--timeout", "1ms")
	if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "stopped waiting") {
		t.Fatalf("--timeout 1ms: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	jobID := strings.Fields(strings.TrimPrefix(r.stdout, "resync job "))[0]
	jp, err := worker.NewJobs(u.rs.Client(t), nil, worker.JobsConfig{}, nil).Progress(t.Context(), jobID)
	if err != nil || jp.Read != 3 || jp.Enqueued+jp.Coalesced != 3 || jp.State == worker.JobFailed {
		t.Fatalf("job after --timeout: %+v, %v; want all 3 ids enqueued, not failed", jp, err)
	}
	if r = u.run(t, 10*time.Second, "", "resync", file, "--status", "Active"); r.code != 2 {
		t.Errorf("FILE and --status: exit %d; want 2", r.code)
	}
	if r = u.run(t, 10*time.Second, "", "resync"); r.code != 2 {
		t.Errorf("no selection: exit %d; want 2", r.code)
	}
}
