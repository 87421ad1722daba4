package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// The helper process: the bench's own test binary re-executed with
// childEnv set (TestMain). It runs what must not be counted as zsync's CPU:
// the Zuora and Limio sandboxes and the HTTP load generator. The bench
// process then holds only zsync (or a reference) and its Redis clients, so
// its own CPU time (getrusage) is zsync's work, measured by the kernel.
// The parent drives the child through a small JSON API on loopback.

const childEnv = "ZSYNC_BENCH_CHILD"

// child is the parent's handle on a helper process.
type child struct {
	base string
	hc   *http.Client
}

// startChild re-executes the test binary as a helper process; it dies with
// the benchmark (stdin closed, and Pdeathsig).
func startChild(b testing.TB) *child {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("helper process: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return &child{base: strings.TrimSpace(line), hc: &http.Client{Timeout: 5 * time.Minute}}
}

// call POSTs in (JSON) to the child's path and decodes the answer into out.
func (c *child) call(b testing.TB, path string, in, out any) {
	b.Helper()
	body, _ := json.Marshal(in)
	resp, err := c.hc.Post(c.base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatalf("helper %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("helper %s: %d %s", path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			b.Fatalf("helper %s: %v", path, err)
		}
	}
}

type sandboxesReq struct{ Subs, Limit int }
type sandboxesResp struct{ Zuora, Limio string }

// childCounts is what both sandboxes served, tokens and admin calls aside.
type childCounts struct{ ZuoraReads, LimioReads, LimioWrites, Throttled int }

func (a childCounts) minus(o childCounts) childCounts {
	return childCounts{a.ZuoraReads - o.ZuoraReads, a.LimioReads - o.LimioReads, a.LimioWrites - o.LimioWrites, a.Throttled - o.Throttled}
}

// tracedCall is one API request a sandbox served while tracing was on.
type tracedCall struct {
	Method, Path string
	Start, End   int64 // unix ns
}

type loadReq struct {
	URL      string
	Conns    int
	Millis   int
	FirstSeq int64
}

type loadResp struct {
	OK, Errs  int
	ElapsedNS int64
	LatNS     []int64
	FirstErr  string
}

func (r loadResp) result() loadResult {
	res := loadResult{ok: r.OK, errs: r.Errs, elapsed: time.Duration(r.ElapsedNS), firstErr: r.FirstErr}
	res.lat = make([]time.Duration, len(r.LatNS))
	for i, ns := range r.LatNS {
		res.lat[i] = time.Duration(ns)
	}
	return res
}

// runChild is the helper process's main: it serves the control API until
// its stdin closes.
func runChild() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h := &childServer{}
	srv := &http.Server{Handler: h.routes()}
	go func() { _ = srv.Serve(l) }()
	fmt.Printf("http://%s\n", l.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent goes
	return 0
}

type childServer struct {
	mu      sync.Mutex
	zs      *zuoratest.Server
	ls      *limiotest.Server
	subs    int
	tracing bool
	trace   []tracedCall
}

func (s *childServer) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(path string, fn func(r *http.Request) (any, error)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			out, err := fn(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_ = json.NewEncoder(w).Encode(out)
		})
	}
	handle("/sandboxes", s.sandboxes)
	handle("/latency", func(r *http.Request) (any, error) {
		var in struct{ MS int }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			return nil, err
		}
		s.zs.ClearFaults()
		s.ls.ClearFaults()
		if in.MS > 0 {
			s.zs.AddFault(sandbox.Fault{Path: "/v1/", LatencyMS: in.MS})
			s.ls.AddFault(sandbox.Fault{Path: "/api/", LatencyMS: in.MS})
		}
		return struct{}{}, nil
	})
	handle("/counts", func(*http.Request) (any, error) {
		return childCounts{
			ZuoraReads:  s.zs.Count(http.MethodGet, "/v1/") + s.zs.Count(http.MethodPost, "/v1/"),
			LimioReads:  s.ls.Count(http.MethodGet, "/api/"),
			LimioWrites: s.ls.Count(http.MethodPut, "/api/") + s.ls.Count(http.MethodPost, "/api/"),
			Throttled:   s.zs.Throttled(),
		}, nil
	})
	handle("/bump", s.bump)
	handle("/trace", func(r *http.Request) (any, error) {
		var in struct{ On bool }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		out := s.trace
		s.tracing, s.trace = in.On, nil
		return out, nil
	})
	handle("/load", s.load)
	return mux
}

// sandboxes starts both sandboxes with subs seeded subscriptions.
func (s *childServer) sandboxes(r *http.Request) (any, error) {
	var in sandboxesReq
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return nil, err
	}
	s.zs = zuoratest.New(zuoratest.WithLimits(in.Limit, 0))
	s.ls = limiotest.New()
	s.subs = in.Subs
	if err := seedZuoraInto(s.zs, in.Subs); err != nil {
		return nil, err
	}
	zu, err := s.serve(s.zs.Handler())
	if err != nil {
		return nil, err
	}
	lu, err := s.serve(s.ls.Handler())
	if err != nil {
		return nil, err
	}
	s.zs.URL, s.ls.URL = zu, lu
	return sandboxesResp{Zuora: zu, Limio: lu}, nil
}

// serve serves h on a loopback port, recording API calls while tracing.
func (s *childServer) serve(h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	traced := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		on := s.tracing
		s.mu.Unlock()
		if !on || strings.Contains(r.URL.Path, "token") || strings.HasPrefix(r.URL.Path, "/sandbox/") {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		h.ServeHTTP(w, r)
		s.mu.Lock()
		s.trace = append(s.trace, tracedCall{r.Method, r.URL.Path, start.UnixNano(), time.Now().UnixNano()})
		s.mu.Unlock()
	})
	srv := &http.Server{Handler: traced, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), nil
}

// bump flips autoRenew of the first N subscriptions in Zuora, so that
// their next sync updates one field of the Limio subscription.
func (s *childServer) bump(r *http.Request) (any, error) {
	var in struct{ From, N int }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return nil, err
	}
	for i := in.From; i < in.From+in.N; i++ {
		sub, ok := s.zs.Subscription(subNumber(i))
		if !ok {
			return nil, fmt.Errorf("no subscription %s", subNumber(i))
		}
		sub.AutoRenew = !sub.AutoRenew
		if err := s.zs.PutSubscription(sub); err != nil {
			return nil, err
		}
	}
	return struct{}{}, nil
}

// load runs a closed-loop callout load against in.URL.
func (s *childServer) load(r *http.Request) (any, error) {
	var in loadReq
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return nil, err
	}
	res := runLoad(r.Context(), newLoadClient(in.Conns), in.Conns, time.Duration(in.Millis)*time.Millisecond,
		func(n int64) *http.Request { return calloutRequest(in.URL, in.FirstSeq+n) })
	out := loadResp{OK: res.ok, Errs: res.errs, ElapsedNS: int64(res.elapsed), FirstErr: res.firstErr}
	out.LatNS = make([]int64, len(res.lat))
	for i, d := range res.lat {
		out.LatNS[i] = int64(d)
	}
	return out, nil
}

// zuoraConfig is a client configuration for the child's Zuora sandbox.
func zuoraConfig(url string) zuora.Config {
	return zuora.Config{BaseURL: url, ClientID: "sandbox", ClientSecret: "sandbox"}
}
