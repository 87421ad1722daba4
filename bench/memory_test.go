package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/freeport"
	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/zuora/zuoratest"
)

const (
	memKeys    = 300
	memLoad    = 6 * time.Second
	memConns   = 64
	memSettle  = 2 * time.Second // after start, before "at rest"
	memSampleT = 100 * time.Millisecond
)

// BenchmarkMemory: resident memory of `zsync serve` and `zsync work`, run as
// processes of the built binary with the default config, at rest and under a
// callout load that the worker syncs against the sandboxes (50 ms latency).
func BenchmarkMemory(b *testing.B) { once(b, "memory", benchMemory) }

func benchMemory(b *testing.B) {
	ctx := b.Context()
	bin := buildZsync(b)
	rs := redistest.Start(b)
	zs := zuoratest.NewServer(b, zuoratest.WithLimits(workerLimit, 0))
	ls := limiotest.NewServer(b)
	seedZuora(b, zs, memKeys)
	zs.AddFault(sandbox.Fault{Path: "/v1/", LatencyMS: int(workerLatency / time.Millisecond)})
	ls.AddFault(sandbox.Fault{Path: "/api/", LatencyMS: int(workerLatency / time.Millisecond)})

	addr := freeAddr(b)
	env := []string{
		"ZSYNC_REDIS_ADDR=" + rs.Addr,
		fmt.Sprintf("ZSYNC_REDIS_DB=%d", rs.DB),
		"ZSYNC_HTTP_ADDR=" + addr,
		"ZSYNC_ZUORA_BASE_URL=" + zs.URL,
		"ZSYNC_ZUORA_CLIENT_ID=sandbox",
		"ZSYNC_ZUORA_CLIENT_SECRET=sandbox",
		"ZSYNC_LIMIO_BASE_URL=" + ls.URL,
		"ZSYNC_LIMIO_CLIENT_ID=sandbox",
		"ZSYNC_LIMIO_CLIENT_SECRET=sandbox",
		"ZSYNC_CALLOUT_USERNAME=" + calloutUser,
		"ZSYNC_CALLOUT_PASSWORD=" + calloutPass,
		"ZSYNC_OPERATOR_TOKEN=" + operatorToken,
		"ZSYNC_WORKER_SHUTDOWN_TIMEOUT=5s",
	}
	serve := startProcess(b, bin, env, "serve")
	work := startProcess(b, bin, env, "work")
	base := "http://" + addr
	if !waitFor(ctx, 20*time.Second, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		b.Fatalf("serve did not answer /healthz:\n%s", serve.out.String())
	}
	time.Sleep(memSettle)
	serveRest, workRest := serve.rss(b), work.rss(b)

	// Load: callouts for the seeded subscriptions; RSS sampled throughout
	// and while the worker drains.
	var peakMu sync.Mutex
	var servePeak, workPeak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(memSampleT)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s, w := serve.rss(b), work.rss(b)
				peakMu.Lock()
				servePeak, workPeak = max(servePeak, s), max(workPeak, w)
				peakMu.Unlock()
			}
		}
	}()
	z0 := zs.Count("", "/v1/")
	load := runLoad(ctx, newLoadClient(memConns), memConns, memLoad, func(n int64) *http.Request {
		req := calloutRequest(base, 0)
		body := fmt.Sprintf(`{"subscriptionNumber":%q,"eventType":"SubscriptionUpdated"}`, subNumber(int(n%memKeys)))
		req.Body, req.ContentLength = nopCloser{strings.NewReader(body)}, int64(len(body))
		return req
	})
	time.Sleep(3 * time.Second) // the worker keeps syncing what was queued
	close(stop)
	<-sampled
	zReads := zs.Count("", "/v1/") - z0
	if serve.exited() || work.exited() {
		b.Fatalf("a process exited under load:\nserve:\n%s\nwork:\n%s", serve.out.String(), work.out.String())
	}
	b.Logf("load: %s; Zuora reads served %d; RSS serve %d→%d KiB, work %d→%d KiB", load, zReads,
		serveRest, servePeak, workRest, workPeak)

	mib := func(kb uint64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
	addRow("memory: zsync serve RSS, peak under load", mib(servePeak), mib(serveRest)+" at rest", ratio(float64(servePeak), float64(serveRest)), "", nil)
	addRow("memory: zsync work RSS, peak under load", mib(workPeak), mib(workRest)+" at rest", ratio(float64(workPeak), float64(workRest)), "", nil)
	addNote("memory: the built binary (no -race) with the default config; at rest = %v after start; load = %d connections for %v of callouts "+
		"for %d seeded subscriptions (%.0f callouts/s accepted, %d errors), then 3 s of draining; the worker made %d Zuora reads meanwhile; "+
		"RSS = VmRSS from /proc/<pid>/status sampled every %v",
		memSettle, memConns, memLoad, memKeys, load.rate(), load.errs, zReads, memSampleT)
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// buildZsync builds cmd/zsync (without -race) into a temporary directory.
func buildZsync(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "zsync")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/zsync")
	cmd.Dir = ".." // go test runs in the package directory
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type process struct {
	cmd  *exec.Cmd
	out  *capped
	done chan struct{}
}

// startProcess runs bin with args; it is stopped (SIGTERM, then SIGKILL)
// when the benchmark ends.
func startProcess(b *testing.B, bin string, env []string, args ...string) *process {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &capped{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start zsync %v: %v", args, err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// rss is the process's resident set in KiB (0 once it has exited).
func (p *process) rss(b *testing.B) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			b.Logf("read status: %v", err)
		}
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// capped keeps the first max bytes a process writes (for failure reports).
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func freeAddr(b *testing.B) string {
	b.Helper()
	a, err := freeport.Addr()
	if err != nil {
		b.Fatal(err)
	}
	return a
}
