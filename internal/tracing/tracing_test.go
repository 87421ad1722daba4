package tracing

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Off unless configured: a no-op provider, nothing exported.
func TestOffByDefault(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tp, stop, err := New(context.Background(), "", "zsync-test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop(context.Background()) }()
	if _, ok := tp.(*sdktrace.TracerProvider); ok {
		t.Fatal("traces on without otel.endpoint or OTEL_* variables")
	}
	_, span := tp.Tracer(Scope).Start(context.Background(), "x")
	if span.SpanContext().IsValid() {
		t.Error("the off provider made a real span")
	}
	if !enabled("http://collector:4318") {
		t.Error("otel.endpoint does not turn traces on")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
	if !enabled("") {
		t.Error("OTEL_EXPORTER_OTLP_ENDPOINT does not turn traces on")
	}
}

// Task headers carry the trace context from the enqueuer to the run.
func TestHeadersCarryTheTrace(t *testing.T) {
	t.Parallel()
	if Inject(context.Background()) != nil {
		t.Error("headers without a span to carry")
	}
	exp := tracetest.NewInMemoryExporter()
	tp := NewProvider("zsync-test", sdktrace.WithSyncer(exp))
	ctx, parent := tp.Tracer(Scope).Start(context.Background(), "enqueue")
	h := Inject(ctx)
	parent.End()
	if h["traceparent"] == "" {
		t.Fatalf("headers %v; want traceparent", h)
	}
	_, child := tp.Tracer(Scope).Start(Extract(context.Background(), h), "sync")
	child.End()
	got := trace.SpanContextFromContext(Extract(context.Background(), h))
	if got.TraceID() != parent.SpanContext().TraceID() || got.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("extracted %v; want the parent %v", got, parent.SpanContext())
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[1].Parent.SpanID() != spans[0].SpanContext.SpanID() {
		t.Errorf("spans %v; want sync a child of enqueue", spans)
	}
}
