// Package logging builds the one zap logger of a zsync process. Components
// get it (or a Named child) passed in; nothing logs through a global.
package logging

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger at level ("debug", "info", "warn", "error") in format
// "json" or "console", writing to out (os.Stderr when nil).
//
// The logger itself never samples: every sync's outcome line must be there.
// (The ingress samples only its own successful access lines under bursts,
// api/accesslog.go; every refusal and error is written.) JSON lines are
// buffered, flushed every second and by Sync, so logging costs no write
// system call per request under load. Console lines (zsync dev) are written
// at once.
func New(level, format string, out zapcore.WriteSyncer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	if out == nil {
		out = os.Stderr
	}
	errOut := zap.ErrorOutput(zapcore.Lock(os.Stderr))
	if strings.EqualFold(format, "console") {
		enc := zap.NewDevelopmentEncoderConfig()
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		if isTerminal(out) {
			// Colour only for a person watching: never into a file or pipe.
			enc.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(out), lvl)
		return zap.New(core, zap.AddCaller(), errOut), nil
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	buffered := &zapcore.BufferedWriteSyncer{WS: out, Size: 256 << 10, FlushInterval: time.Second}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), buffered, lvl)
	return zap.New(core, zap.AddCaller(), errOut), nil
}

// isTerminal reports whether out is a terminal (a file descriptor isatty
// says is one).
func isTerminal(out zapcore.WriteSyncer) bool {
	f, ok := out.(interface{ Fd() uintptr })
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
