package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The access log's sampling of successful requests: in each second the first
// accessLogFirst lines of status < 400 are written, then one in
// accessLogThereafter. A burst of callouts (a bulk change in Zuora, a
// re-delivery storm) then costs a few hundred lines a second, not one per
// callout; every 4xx and 5xx (refusals, 401 challenges included) is always
// written, and the HTTP metrics count every request whatever was logged.
const (
	accessLogTick       = time.Second
	accessLogFirst      = 100
	accessLogThereafter = 100
)

// accessLoggers write the request lines. Neither records the caller: it is
// always this file, and looking it up (runtime.Callers, a frame lookup) was
// a fixed cost on every request.
type accessLoggers struct {
	all *zap.Logger // 4xx, 5xx: every line
	ok  *zap.Logger // status < 400: sampled
}

// newAccessLoggers derives both from log. now is the ingress's clock; the
// sampler reads its seconds from the entries' time, so it is the logger's
// clock too.
func newAccessLoggers(log *zap.Logger, now func() time.Time) accessLoggers {
	all := log.WithOptions(zap.WithCaller(false), zap.WithClock(entryClock(now)))
	return accessLoggers{
		all: all,
		ok: all.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, accessLogTick, accessLogFirst, accessLogThereafter)
		})),
	}
}

// entryClock adapts the ingress's clock to zap's.
type entryClock func() time.Time

func (c entryClock) Now() time.Time                       { return c() }
func (entryClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// accessFields are the handlers' context values the line carries, in order.
var accessFields = [...]struct{ ctx, field string }{
	{ctxSubscription, "subscription"},
	{ctxNotification, "notification_id"},
	{ctxStatus, "outcome"},
	{ctxTaskID, "task_id"},
	{ctxError, "error"},
	{ctxCause, "cause"},
}

// accessLog writes one line per request (a successful one sampled under
// bursts, above). It logs no headers (Authorization, signatures), no query
// string and no body. The fields are built only for a line that is written.
func (s *server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		var ce *zapcore.CheckedEntry
		switch {
		case status >= 500:
			ce = s.access.all.Check(zap.ErrorLevel, "request")
		case status == http.StatusUnauthorized:
			// Zuora's normal Basic challenge round trip: not a warning.
			ce = s.access.all.Check(zap.InfoLevel, "request")
		case status >= 400:
			ce = s.access.all.Check(zap.WarnLevel, "request")
		default:
			ce = s.access.ok.Check(zap.InfoLevel, "request")
		}
		if ce == nil {
			return nil
		}
		r := c.Request()
		fields := make([]zap.Field, 0, 8+len(accessFields))
		fields = append(fields,
			zap.String("request_id", requestID(c)),
			zap.String("method", r.Method),
			zap.String("path", r.URL.Path),
			zap.String("route", c.Path()),
			zap.Int("status", status),
			zap.Duration("duration", time.Since(start)),
			zap.String("remote_ip", c.RealIP()),
			zap.Int64("bytes_out", c.Response().Size),
		)
		for _, k := range accessFields {
			if v, ok := c.Get(k.ctx).(string); ok && v != "" {
				fields = append(fields, zap.String(k.field, v))
			}
		}
		ce.Write(fields...)
		return nil
	}
}
