package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/redistest"
)

// checkTarget is the dev seed's subscription the write checks may touch.
const checkTarget = "sub-seed00000000000000000000000004"

type checkReport struct {
	Results []struct {
		ID, Status, Request, Evidence, Touched, Fix string
	} `json:"results"`
	Pass, Fail, Unknown int
	OK                  bool
}

// checkEnv starts the sandboxes (seeded, as `zsync dev` does) and a Redis,
// and returns the environment pointing zsync at them and the Limio URL.
func checkEnv(t *testing.T) ([]string, string) {
	t.Helper()
	rd := redistest.Start(t)
	za, la := freeAddr(t), freeAddr(t)
	sb := startProc(t, "sandbox", nil, "sandbox", "--seed", "dev", "--zuora-addr", za, "--limio-addr", la)
	waitHTTP(t, sb, "http://"+za+"/sandbox/requests", 15*time.Second)
	waitHTTP(t, sb, "http://"+la+"/sandbox/requests", 15*time.Second)
	return []string{
		"ZSYNC_REDIS_ADDR=" + rd.Addr, fmt.Sprintf("ZSYNC_REDIS_DB=%d", rd.DB),
		"ZSYNC_ZUORA_BASE_URL=http://" + za, "ZSYNC_ZUORA_CLIENT_ID=sandbox", "ZSYNC_ZUORA_CLIENT_SECRET=sandbox",
		"ZSYNC_LIMIO_BASE_URL=http://" + la, "ZSYNC_LIMIO_CLIENT_ID=sandbox", "ZSYNC_LIMIO_CLIENT_SECRET=sandbox",
	}, "http://" + la
}

func sandboxCall(t *testing.T, method, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCheckAgainstEachSwitchedSandbox runs the built `zsync check --write`
// against the default sandbox (every check passes or is unknown, exit 0)
// and against a sandbox switched the other way for each assumption (exit 1,
// and what fails is that assumption, nothing else).
func TestCheckAgainstEachSwitchedSandbox(t *testing.T) {
	env, lim := checkEnv(t)
	cases := []struct{ behaviour, wantFail string }{
		{"", ""},
		{"put_creates", "limio.put_creates"},
		{"put_status", "limio.put_status"},
		{"related_schedules", "limio.related_schedules"},
		{"summary_zuora", "limio.summary_zuora"},
	}
	for _, tc := range cases {
		name := tc.behaviour
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			if c := sandboxCall(t, http.MethodPost, lim+"/sandbox/reset", ""); c != http.StatusOK && c != http.StatusNoContent {
				t.Fatalf("reset: %d", c)
			}
			if tc.behaviour != "" {
				if c := sandboxCall(t, http.MethodPut, lim+"/sandbox/behaviour", `{"`+tc.behaviour+`":false}`); c != http.StatusOK {
					t.Fatalf("behaviour: %d", c)
				}
			}
			out, stderr, code := runZsync(t, env, "check", "--json", "--subscription", "A-S00000201", "--write", checkTarget)
			var rep checkReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("check --json printed no report (%v):\n%s\n%s", err, out, stderr)
			}
			var failed []string
			for _, r := range rep.Results {
				if r.Status == "fail" {
					failed = append(failed, r.ID)
					if !strings.HasPrefix(r.ID, tc.wantFail) || tc.wantFail == "" {
						t.Errorf("%s failed: %s %s: %s", r.ID, r.Request, r.Evidence, r.Fix)
					}
					if r.Fix == "" {
						t.Errorf("%s failed without a fix", r.ID)
					}
				}
			}
			if tc.wantFail == "" {
				if code != 0 || !rep.OK {
					t.Fatalf("default sandbox: exit %d, ok %v, failed %v\n%s", code, rep.OK, failed, stderr)
				}
				return
			}
			if code != 1 || rep.OK || len(failed) == 0 {
				t.Fatalf("%s off: exit %d, ok %v, failed %v; want exit 1 naming %s\n%s", tc.behaviour, code, rep.OK, failed, tc.wantFail, out)
			}
			if !strings.Contains(stderr, "assumption failed") {
				t.Errorf("stderr %q does not say the check failed", stderr)
			}
		})
	}
}

// Without --write, check writes nothing; its text output has one line per
// check and a summary.
func TestCheckIsReadOnlyAndReadable(t *testing.T) {
	env, lim := checkEnv(t)
	out, stderr, code := runZsync(t, env, "check", "--subscription", "A-S00000201")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"PASS    zuora.token", "PASS    zuora.sweep_query ", "PASS    limio.related_schedules",
		"GET /api/objects/limio/subscription/sub-seed00000000000000000000000001/related → 200", "0 fail"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "touched:") {
		t.Errorf("a read-only check touched something:\n%s", out)
	}
	resp, err := http.Get(lim + "/sandbox/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var counts struct {
		Counts map[string]int `json:"counts"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&counts)
	for k := range counts.Counts {
		if strings.HasPrefix(k, "PUT ") || strings.HasPrefix(k, "POST /api/") {
			t.Errorf("check without --write sent %s", k)
		}
	}
	if _, _, code := runZsync(t, env, "check", "--write", "A-S00000201"); code != 2 {
		t.Errorf("--write with a Zuora number: exit %d, want 2 (a usage error)", code)
	}
}
