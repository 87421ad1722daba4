package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/freeport"
)

// portBase finds four consecutive free loopback ports, handed out to no
// other test.
func portBase(t *testing.T) int {
	t.Helper()
	base, err := freeport.Consecutive(4)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// TestDevReachable: zsync dev moved with --port-base writes a config file,
// prints its path, and the operator commands reach the dev stack with it:
// status, plan, resync, audit and check; the resync API is served (not 501); the
// file is removed when dev stops.
func TestDevReachable(t *testing.T) {
	t.Parallel()
	base := portBase(t)
	cfgPath := filepath.Join(t.TempDir(), "dev.yaml")
	p := startProc(t, "dev", []string{"ZSYNC_LOG_LEVEL=warn"}, "dev", "--port-base", strconv.Itoa(base), "--write-config", cfgPath)
	ingress := "http://127.0.0.1:" + strconv.Itoa(base)
	waitHTTP(t, p, ingress+"/readyz", 20*time.Second)
	for i, name := range []string{"zuora", "limio", "redis"} {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(base+1+i))
		if err != nil {
			t.Errorf("%s not on port base+%d: %v", name, 1+i, err)
			continue
		}
		c.Close()
	}
	eventually(t, 10*time.Second, "the config path printed", func() bool { return strings.Contains(p.out.String(), cfgPath) })
	if _, err := os.Stat(cfgPath); err != nil {
		t.Fatal(err)
	}
	// A config in the working directory must not be what the commands read.
	env := []string{"ZSYNC_LOG_LEVEL=warn"}

	resp, err := http.Post(ingress+"/api/plugins/zuora/sync/subscription/A-S00000201", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, 20*time.Second, "zsync status to show the sync", func() bool {
		out, _, code := runZsync(t, env, "status", "--config", cfgPath, "A-S00000201")
		return code == 0 && strings.Contains(out, "A-S00000201") && strings.Contains(out, "updated")
	})
	if out, errOut, code := runZsync(t, env, "plan", "--config", cfgPath, "A-S00000204"); code != 0 || out == "" {
		t.Errorf("zsync plan: exit %d\n%s%s", code, out, errOut)
	}
	ids := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(ids, []byte("A-S00000202\nA-S00000203\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runZsync(t, env, "resync", "--config", cfgPath, ids); code != 0 {
		t.Errorf("zsync resync: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runZsync(t, env, "audit", "--config", cfgPath, "--status", "Active"); code != 0 && code != 1 || out == "" {
		t.Errorf("zsync audit: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runZsync(t, env, "check", "--config", cfgPath); code != 0 || !strings.Contains(out, " 0 fail") {
		t.Errorf("zsync check against dev: exit %d\n%s%s", code, out, errOut)
	}
	resp, err = http.Post(ingress+"/v1/resyncs", "application/json", strings.NewReader(`{"ids":["A-S00000201"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST /v1/resyncs on dev: %d; want 202", resp.StatusCode)
	}

	p.stop(t, 15*time.Second)
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Errorf("config file left behind after dev stopped: %v", err)
	}
}
