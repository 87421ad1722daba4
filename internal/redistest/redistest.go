// Package redistest gives tests a real Redis of their own.
//
// By default every call to Start launches a private redis-server on a free
// loopback port (in-memory, no persistence) and stops it when the test ends, so
// packages and tests run in parallel without flushing each other's keys. When
// REDIS_ADDR is set, tests share that server instead and each one leases a
// database number (1–15) for its lifetime, flushed before use.
//
// Queueing, locking and dedup are always tested against a real redis-server:
// miniredis is for `zsync dev` only.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/freeport"
	"github.com/zsync/zsync/internal/waittest"
)

// Server is a Redis a test may use.
type Server struct {
	Addr string
	DB   int

	cmd *exec.Cmd
}

// Options returns go-redis options for this server.
func (s *Server) Options() *redis.Options {
	return &redis.Options{Addr: s.Addr, DB: s.DB}
}

// Client returns a go-redis client closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(s.Options())
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills a private server at once (to test Redis going away). It is a
// no-op for a shared REDIS_ADDR server.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// Restart starts a private server again on the same address, empty.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.cmd == nil {
		t.Skip("Restart needs a private redis-server (REDIS_ADDR is set)")
	}
	s.Stop()
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd, err := launch(port)
	if err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
	s.cmd = cmd
}

// Start returns a Redis for this test: private unless REDIS_ADDR is set.
func Start(t testing.TB) *Server {
	t.Helper()
	if addr := os.Getenv("REDIS_ADDR"); addr != "" {
		return lease(t, addr)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not on PATH and REDIS_ADDR unset: install redis-server (see .ci/run)")
	}
	var lastErr error
	for range 5 { // a free port can be taken between probe and bind
		port, err := freeport.Port()
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		cmd, err := launch(port)
		if err != nil {
			lastErr = err
			continue
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", port), cmd: cmd}
		t.Cleanup(s.Stop)
		return s
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

func launch(port string, extra ...string) (*exec.Cmd, error) {
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--loglevel", "warning", "--dir", os.TempDir()}, extra...)
	cmd := exec.Command("redis-server", args...)
	// The server dies with the test binary even if the test is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	// The server that answers must be this one: when another process (a
	// parallel go test) bound the port between the probe and this start,
	// ours exits and theirs answers, and the test would share keys with a
	// server that dies with the other test.
	var pid int
	ready := waittest.Until(context.Background(), 10*time.Second, func() bool {
		var err error
		pid, err = serverPID(addr)
		return err == nil
	})
	if ready && pid == cmd.Process.Pid {
		return cmd, nil
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if ready {
		return nil, fmt.Errorf("port %s was taken by another redis-server (pid %d)", port, pid)
	}
	return nil, fmt.Errorf("redis-server on port %s did not answer", port)
}

// serverPID asks the Redis at addr for its process id (INFO server).
func serverPID(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(head, "$") {
		return 0, fmt.Errorf("unexpected reply %q", head)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
}

// lease claims one of databases 1–15 on a shared server for this test.
func lease(t testing.TB, addr string) *Server {
	t.Helper()
	ctx := context.Background()
	ctl := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = ctl.Close() })
	token := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		for db := 1; db <= 15; db++ {
			key := fmt.Sprintf("redistest:lease:%d", db)
			ok, err := ctl.SetNX(ctx, key, token, 10*time.Minute).Result()
			if err != nil {
				t.Fatalf("REDIS_ADDR=%s: %v", addr, err)
			}
			if !ok {
				continue
			}
			s := &Server{Addr: addr, DB: db}
			c := redis.NewClient(s.Options())
			if err := c.FlushDB(ctx).Err(); err != nil {
				t.Fatalf("flush db %d: %v", db, err)
			}
			_ = c.Close()
			t.Cleanup(func() {
				if v, _ := ctl.Get(ctx, key).Result(); v == token {
					ctl.Del(ctx, key)
				}
			})
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("REDIS_ADDR=%s: no free database to lease", addr)
	return nil
}

// StartCluster starts a private three-master Redis Cluster (no replicas) for
// this test and returns its node addresses; it stops when the test ends. It
// needs redis-server on PATH (REDIS_ADDR can't stand in for a cluster).
func StartCluster(t testing.TB) []string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("REDIS_ADDR") != "" {
			t.Skip("a Redis Cluster needs redis-server on PATH")
		}
		t.Fatalf("redis-server not on PATH: install redis-server (see .ci/run)")
	}
	dir := t.TempDir()
	const nodes = 3
	var addrs []string
	for i := 0; len(addrs) < nodes; i++ {
		if i >= 5*nodes {
			t.Fatalf("start cluster nodes: only %d of %d started", len(addrs), nodes)
		}
		port, err := freeport.Port()
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		cmd, err := launch(port, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
			"--cluster-config-file", dir+"/nodes-"+port+".conf")
		if err != nil {
			continue // the port was taken between probe and bind
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", port), cmd: cmd}
		t.Cleanup(s.Stop)
		addrs = append(addrs, s.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	clients := make([]*redis.Client, nodes)
	for i, a := range addrs {
		clients[i] = redis.NewClient(&redis.Options{Addr: a})
		defer clients[i].Close()
	}
	// The 16384 slots split in three ranges, then the nodes meet.
	for i, c := range clients {
		lo, hi := i*16384/nodes, (i+1)*16384/nodes-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("cluster addslotsrange on %s: %v", addrs[i], err)
		}
	}
	for _, a := range addrs[1:] {
		host, port, _ := net.SplitHostPort(a)
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", host, port).Err(); err != nil {
			t.Fatalf("cluster meet %s: %v", a, err)
		}
	}
	for _, c := range clients {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("cluster never became ready: %v %q", err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return addrs
}
