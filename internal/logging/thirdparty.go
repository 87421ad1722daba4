package logging

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The libraries zsync uses log through process-wide loggers of their own:
// go-redis (redis.SetLogger) and the standard library's log package (asynqmon,
// net/http's server errors). RouteThirdParty points both at l, so that every
// line a zsync process writes is in l's format (JSON in production). These
// are globals by the libraries' design; only cmd/zsync calls this, once per
// process, and the returned function restores them.
func RouteThirdParty(l *zap.Logger) (restore func()) {
	redis.SetLogger(RedisLogger(l.Named("redis")))
	undo := zap.RedirectStdLog(l.Named("stdlog"))
	return func() {
		undo()
		redis.SetLogger(stderrLogger{log.New(os.Stderr, "redis: ", log.LstdFlags)})
	}
}

// RedisLogger adapts l to go-redis's logger. go-redis logs what it does
// about connections (redials, a pool that can't dial, a failed
// reconnection): warnings for an operator, not errors of a sync.
func RedisLogger(l *zap.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return redisLogger{l.WithOptions(zap.WithCaller(false))}
}

type redisLogger struct{ l *zap.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// stderrLogger is roughly go-redis's own default, put back by restore.
type stderrLogger struct{ l *log.Logger }

func (s stderrLogger) Printf(_ context.Context, format string, v ...any) { s.l.Printf(format, v...) }
