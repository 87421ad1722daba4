package worker

import (
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/zsync/zsync/internal/tracing"
	"github.com/zsync/zsync/syncer"
)

// Metrics receives the worker's counts. Implement it (Prometheus, say) and
// pass WithMetrics; every method must be safe for concurrent use and fast.
type Metrics interface {
	// Enqueue counts a callout accepted by the Enqueuer.
	Enqueue(queue string, status EnqueueStatus)
	// TaskDone counts one recorded task run by outcome.
	TaskDone(queue string, outcome syncer.Result, d time.Duration)
	// LockBusy counts a task put back because its subscription was locked.
	LockBusy(queue string)
}

type nopMetrics struct{}

func (nopMetrics) Enqueue(string, EnqueueStatus)                 {}
func (nopMetrics) TaskDone(string, syncer.Result, time.Duration) {}
func (nopMetrics) LockBusy(string)                               {}

// Option adjusts an Enqueuer or a Server.
type Option func(*options)

type options struct {
	metrics Metrics
	tracer  trace.Tracer
}

// WithTracer makes spans of enqueues, task runs and lock waits on tp (off:
// none). A task carries its enqueuer's trace context in its headers.
func WithTracer(tp trace.TracerProvider) Option {
	return func(o *options) {
		if tp != nil {
			o.tracer = tp.Tracer(tracing.Scope)
		}
	}
}

// WithMetrics sends counts to m.
func WithMetrics(m Metrics) Option {
	return func(o *options) {
		if m != nil {
			o.metrics = m
		}
	}
}

func applyOptions(opts []Option) options {
	o := options{metrics: nopMetrics{}, tracer: noop.NewTracerProvider().Tracer(tracing.Scope)}
	for _, f := range opts {
		f(&o)
	}
	return o
}
