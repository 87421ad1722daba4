package redistest

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
)

func TestStartIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := Start(t), Start(t)
	ca, cb := a.Client(t), b.Client(t)
	if err := ca.Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}
	if n, err := cb.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("second server sees first's key: n=%d err=%v", n, err)
	}
	if v, err := ca.Get(ctx, "k").Result(); err != nil || v != "a" {
		t.Fatalf("Get = %q, %v; want a", v, err)
	}
}

func TestStopAndRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if s.cmd == nil {
		t.Skip("shared REDIS_ADDR server")
	}
	c := s.Client(t)
	ctx := context.Background()
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping after Stop succeeded")
	}
	s.Restart(t)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after Restart: %v", err)
	}
}

// A redis-server started on a port another one already holds (a parallel
// test binary won the race for it) is not taken for ours: launch fails, so
// Start tries another port, instead of handing the test a foreign server.
func TestLaunchRefusesAServerThatIsNotOurs(t *testing.T) {
	if os.Getenv("REDIS_ADDR") != "" {
		t.Skip("needs private redis-servers")
	}
	t.Parallel()
	other := Start(t)
	_, port, _ := net.SplitHostPort(other.Addr)
	if cmd, err := launch(port); err == nil || !strings.Contains(err.Error(), "taken by another") {
		if cmd != nil {
			_ = cmd.Process.Kill()
		}
		t.Fatalf("launch on a taken port: %v; want refused as taken by another redis-server", err)
	}
	if err := other.Client(t).Ping(t.Context()).Err(); err != nil {
		t.Fatalf("the other server after the refused launch: %v", err)
	}
}
