// Package tracing builds zsync's OpenTelemetry tracer provider and carries
// trace context where HTTP headers can't: in asynq task headers, from the
// callout that enqueued a task to the worker that runs it.
//
// Traces are off by default (a no-op provider, nothing exported). They go by
// OTLP/HTTP when otel.endpoint is set, or when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variables
// are (the exporter reads the other OTEL_* variables itself). Span attributes
// carry ids, routes, queues and outcomes — never credentials, bodies or
// contact data.
package tracing

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/zsync/zsync/internal/buildinfo"
)

// Scope is the instrumentation scope of zsync's own spans.
const Scope = "github.com/zsync/zsync"

// propagator is W3C trace context, in HTTP and in task headers alike.
var propagator = propagation.TraceContext{}

// Propagator is what otelhttp and the task headers use.
func Propagator() propagation.TextMapPropagator { return propagator }

// enabled reports whether traces are to be exported: endpoint set, or the
// standard OTLP endpoint variables.
func enabled(endpoint string) bool {
	return endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// New returns the provider of a process named service ("zsync-serve"…) and
// its shutdown, which flushes spans not yet exported. Off, it is a no-op.
func New(ctx context.Context, endpoint, service string) (trace.TracerProvider, func(context.Context) error, error) {
	if !enabled(endpoint) {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	var opts []otlptracehttp.Option
	if endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("otel.endpoint: %w", err)
	}
	tp := NewProvider(service, sdktrace.WithBatcher(exp))
	return tp, tp.Shutdown, nil
}

// NewProvider is a provider for service with zsync's resource; tests pass an
// in-memory exporter (sdktrace.WithSyncer).
func NewProvider(service string, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	res := resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(buildinfo.Get().Version))
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithResource(res)}, opts...)...)
}

// Inject returns ctx's trace context as task headers (nil when there is no
// span to carry).
func Inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c
}

// Extract returns ctx carrying the remote trace context of a task's headers.
func Extract(ctx context.Context, headers map[string]string) context.Context {
	if len(headers) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier(headers))
}
