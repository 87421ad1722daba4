package main

import (
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/zuora/zuoratest"
)

func getBody(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// zsync work serves /healthz and /readyz without credentials on
// worker.metrics_addr, /readyz/detail and /metrics with them; once SIGTERM
// stops its asynq server it is no longer ready.
func TestWorkProbes(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	zs, ls := zuoratest.NewServer(t), limiotest.NewServer(t)
	addr := freeAddr(t)
	base := "http://" + addr
	p := startProc(t, "work", upstreamEnv(rs, zs, ls, "ZSYNC_WORKER_METRICS_ADDR="+addr, "ZSYNC_OPERATOR_TOKEN=op-tok",
		"ZSYNC_WORKER_SHUTDOWN_TIMEOUT=5s"), "work")
	waitHTTP(t, p, base+"/readyz", 30*time.Second)
	if code, body := getBody(t, base+"/readyz", ""); code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if code, body := getBody(t, base+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, _ := getBody(t, base+"/readyz/detail", ""); code != http.StatusUnauthorized {
		t.Errorf("/readyz/detail without credentials = %d; want 401", code)
	}
	if code, body := getBody(t, base+"/readyz/detail", "op-tok"); code != http.StatusOK ||
		!strings.Contains(body, `"worker":"ok"`) || !strings.Contains(body, `"redis":"ok"`) {
		t.Errorf("/readyz/detail = %d %s", code, body)
	}
	if code, _ := getBody(t, base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials = %d; want 401", code)
	}
	if code, body := getBody(t, base+"/metrics", "op-tok"); code != http.StatusOK ||
		!strings.Contains(body, `zsync_build_info{goversion="`) || !strings.Contains(body, `version="`+testVersion+`"} 1`) {
		t.Errorf("/metrics = %d; want zsync_build_info of %s", code, testVersion)
	}
	p.stop(t, 20*time.Second)
}

// zsync --version prints the stamped version, the revision and Go's version.
func TestVersion(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(zsyncBinary(t), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("zsync --version: %v\n%s", err, out)
	}
	if got := string(out); !strings.HasPrefix(got, "zsync "+testVersion+" (revision ") || !strings.Contains(got, runtime.Version()) {
		t.Errorf("zsync --version = %q", got)
	}
}
