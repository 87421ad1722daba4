package logging

import (
	"bytes"
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
