package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/zsync/zsync/internal/tracing"
)

// traceRequests starts a server span per request, named by its route
// pattern, so a callout's trace goes on through the enqueue into the task.
// Attributes: method, route, status, the subscription key and what became of
// the callout — never headers, the query string or the body.
func (s *server) traceRequests(tp trace.TracerProvider, routes map[string]bool) echo.MiddlewareFunc {
	tracer := tp.Tracer(tracing.Scope)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			route := c.Path()
			if !routes[route] {
				route = routeUnmatched
			}
			ctx := tracing.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", route)))
			defer span.End()
			c.SetRequest(r.WithContext(ctx))
			if err := next(c); err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			for _, k := range []struct{ ctx, attr string }{{ctxSubscription, "zsync.subscription"}, {ctxStatus, "zsync.status"}, {ctxTaskID, "zsync.task_id"}} {
				if v, ok := c.Get(k.ctx).(string); ok && v != "" {
					span.SetAttributes(attribute.String(k.attr, v))
				}
			}
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			return nil
		}
	}
}
