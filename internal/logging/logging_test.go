package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	stdlog "log"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zapcore"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) Sync() error                 { return nil }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Production JSON logging keeps every line (zap's production preset samples
// after 100 identical messages a second) and Sync flushes the buffer.
func TestJSONKeepsEveryLineAndFlushesOnSync(t *testing.T) {
	t.Parallel()
	out := &syncBuf{}
	log, err := New("info", "json", out)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		log.Info("sync", zapFieldOutcome())
	}
	log.Debug("hidden")
	if err := log.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `"msg":"sync"`); n != 1000 {
		t.Fatalf("%d of 1000 lines written; want all", n)
	}
	if strings.Contains(out.String(), "hidden") {
		t.Fatal("debug line written at info level")
	}
}

func TestBadLevel(t *testing.T) {
	t.Parallel()
	if _, err := New("loud", "json", zapcore.AddSync(&bytes.Buffer{})); err == nil {
		t.Fatal("bad level accepted")
	}
}

func zapFieldOutcome() zapcore.Field {
	return zapcore.Field{Key: "outcome", Type: zapcore.StringType, String: "updated"}
}

// Console lines (zsync dev) carry no colour codes unless they go to a
// terminal: a redirected log file stays readable.
func TestConsoleHasNoColourOffATerminal(t *testing.T) {
	t.Parallel()
	out := &syncBuf{}
	log, err := New("info", "console", out)
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("careful")
	if s := out.String(); !strings.Contains(s, "WARN") || strings.Contains(s, "\x1b[") {
		t.Errorf("console line %q; want the level without ANSI colour", s)
	}
}

// go-redis's and the standard library's loggers write JSON lines through
// zap once routed.
func TestRouteThirdParty(t *testing.T) {
	out := &syncBuf{}
	l, err := New("info", "json", out)
	if err != nil {
		t.Fatal(err)
	}
	restore := RouteThirdParty(l)
	stdlog.Printf("http: Accept error: too many open files")
	RedisLogger(l).Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s\n", 5, "refused")
	restore()
	stdlog.SetOutput(io.Discard) // whatever the standard logger does now, not into out
	stdlog.Printf("after restore")
	_ = l.Sync()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines; want 2:\n%s", len(lines), out.String())
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if !strings.Contains(m["msg"].(string), "Accept error") && !strings.Contains(m["msg"].(string), "failed to dial after 5 attempts") {
			t.Errorf("unexpected line %s", line)
		}
	}
}
