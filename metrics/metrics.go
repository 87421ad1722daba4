// Package metrics defines every Prometheus series zsync exports, in one
// place: the worker's counts (it implements worker.Metrics and
// worker.SweepMetrics), the Zuora and Limio clients' calls (Observer), the
// event-to-sync lag and upstream throttling (Syncer), and asynq's own queue
// series (WatchQueues). Each process builds one Metrics on its own registry
// and serves it with Handler, behind operator authentication.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// Metrics holds zsync's collectors. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	enqueues  *prometheus.CounterVec
	syncs     *prometheus.CounterVec
	syncTime  *prometheus.HistogramVec
	lockWaits *prometheus.CounterVec
	requests  *prometheus.CounterVec
	reqTime   *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	lag       *prometheus.HistogramVec
	sweeps    *prometheus.CounterVec
	sweepSubs prometheus.Counter
	sweepLast prometheus.Gauge
	limits    *limitSeries
	http      httpMetrics // http.go
	dataLoss  prometheus.Counter
}

var (
	_ worker.Metrics      = (*Metrics)(nil)
	_ worker.SweepMetrics = (*Metrics)(nil)
	_ worker.LossMetrics  = (*Metrics)(nil)
)

// New returns Metrics on a fresh registry, with the Go runtime and process
// collectors.
func New() *Metrics {
	m := &Metrics{
		reg:  prometheus.NewRegistry(),
		http: newHTTPMetrics(),
		enqueues: counterVec("zsync_enqueues_total", []string{"queue", "status"},
			"Sync requests (callouts, manual, bulk, sweep) by queue and status: enqueued (new task), coalesced (joined a task not yet reading Zuora), skipped (loop guard at the ingress)."),
		syncs: counterVec("zsync_syncs_total", []string{"outcome", "queue"},
			"Recorded sync runs by outcome (created, updated, unchanged, skipped, not_found, failed) and queue."),
		syncTime: histogramVec("zsync_sync_duration_seconds", []string{"queue"}, prometheus.ExponentialBuckets(0.01, 2.5, 10), // 10ms … 38s
			"Duration of recorded sync runs, lock to record."),
		lockWaits: counterVec("zsync_lock_waits_total", []string{"queue"},
			"Sync tasks put back because their subscription was locked by another run."),
		requests: counterVec("zsync_upstream_requests_total", []string{"api", "op", "status"},
			"Zuora and Limio API responses by API, operation and HTTP status (\"error\": no response)."),
		reqTime: histogramVec("zsync_upstream_request_duration_seconds", []string{"api", "op"}, prometheus.ExponentialBuckets(0.005, 2.5, 10), // 5ms … 19s
			"Latency of Zuora and Limio API calls."),
		throttled: counterVec("zsync_upstream_throttled_total", []string{"api"},
			"Sync attempts put back to wait for an upstream limit (a 429 or the tenant-wide limiter); not failures."),
		lag: histogramVec("zsync_event_to_sync_seconds", []string{"source"}, prometheus.ExponentialBuckets(0.1, 3, 10), // 100ms … 33m
			"From the first callout (or manual request) a task carries being received to the start of the successful sync that read Zuora after it."),
		sweeps: counterVec("zsync_sweeps_total", []string{"result"},
			"Periodic sweeps that ran, by result (ok, failed, rejected: Zuora refused the query, not retried); no-op ticks are not counted."),
		sweepSubs: counter("zsync_sweep_subscriptions_total",
			"Subscriptions the periodic sweep found changed in Zuora and requested a sync for."),
		sweepLast: gauge("zsync_sweep_last_success_timestamp_seconds",
			"Unix time the last successful sweep in this process finished (0: none yet)."),
		dataLoss: counter("zsync_redis_data_loss_total",
			"Times this process found that Redis had lost its data (its marker key gone or replaced): running syncs were stopped and a catch-up sweep enqueued."),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.enqueues, m.syncs, m.syncTime, m.lockWaits, m.requests, m.reqTime, m.throttled, m.lag,
		m.sweeps, m.sweepSubs, m.sweepLast, m.dataLoss,
		m.http.requests, m.http.duration, m.http.refused, buildInfo(),
	)
	m.limits = newLimitSeries(m.reg)
	// Series that alerts divide by exist from the start, at zero.
	for _, q := range []string{worker.QueueCallouts, worker.QueueBulk} {
		for _, st := range []worker.EnqueueStatus{worker.Enqueued, worker.Coalesced} {
			m.enqueues.WithLabelValues(q, string(st))
		}
		for _, o := range syncer.Results() {
			m.syncs.WithLabelValues(string(o), q)
		}
		m.lockWaits.WithLabelValues(q)
	}
	m.enqueues.WithLabelValues(worker.QueueCallouts, string(worker.SkippedStatus))
	for _, api := range []string{"zuora", "limio"} {
		m.throttled.WithLabelValues(api)
	}
	m.sweeps.WithLabelValues("ok")
	m.sweeps.WithLabelValues("failed")
	return m
}

// Handler serves the registry in the Prometheus exposition format. A
// collector that fails (Redis down for the queue series) doesn't hide the
// others.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// WatchQueues adds asynq's queue series (asynq_queue_size,
// asynq_queue_latency_seconds, asynq_tasks_enqueued_total{state}, …). Each
// scrape reads every queue from Redis, so only the ingress registers it.
func (m *Metrics) WatchQueues(inspector *asynq.Inspector) error {
	return m.reg.Register(asynqmetrics.NewQueueMetricsCollector(inspector))
}

// Enqueue implements worker.Metrics.
func (m *Metrics) Enqueue(queue string, status worker.EnqueueStatus) {
	m.enqueues.WithLabelValues(queue, string(status)).Inc()
}

// TaskDone implements worker.Metrics.
func (m *Metrics) TaskDone(queue string, outcome syncer.Result, d time.Duration) {
	m.syncs.WithLabelValues(string(outcome), queue).Inc()
	m.syncTime.WithLabelValues(queue).Observe(d.Seconds())
}

// LockBusy implements worker.Metrics.
func (m *Metrics) LockBusy(queue string) { m.lockWaits.WithLabelValues(queue).Inc() }

// Sweep implements worker.SweepMetrics.
func (m *Metrics) Sweep(ok bool, subscriptions int, _ time.Duration) {
	if !ok {
		m.sweeps.WithLabelValues("failed").Inc()
		return
	}
	m.sweeps.WithLabelValues("ok").Inc()
	m.sweepSubs.Add(float64(subscriptions))
	m.sweepLast.SetToCurrentTime()
}

// SweepRejected implements worker.SweepRejectMetrics: Zuora refused the
// sweep's query (zsync_sweeps_total{result="rejected"}).
func (m *Metrics) SweepRejected() { m.sweeps.WithLabelValues("rejected").Inc() }

// RedisDataLoss implements worker.LossMetrics.
func (m *Metrics) RedisDataLoss() { m.dataLoss.Inc() }

// Observer returns the WithObserver hook of the api client ("zuora",
// "limio"): op carries no ids, so the label set stays small.
func (m *Metrics) Observer(api string) func(op string, status int, d time.Duration) {
	return func(op string, status int, d time.Duration) {
		code := "error"
		if status > 0 {
			code = strconv.Itoa(status)
		}
		m.requests.WithLabelValues(api, op, code).Inc()
		m.reqTime.WithLabelValues(api, op).Observe(d.Seconds())
	}
}

// Syncer wraps the worker's syncer to measure what only the sync sees: the
// lag from the callout to the sync that read Zuora after it, and runs that
// ended waiting for an upstream limit.
func (m *Metrics) Syncer(s worker.Syncer) worker.Syncer { return instrumented{next: s, m: m} }

type instrumented struct {
	next worker.Syncer
	m    *Metrics
}

// Canonical passes through to the wrapped syncer, so wrapping doesn't change
// how the worker locks.
func (s instrumented) Canonical(ctx context.Context, key string) (string, error) {
	return s.next.Canonical(ctx, key)
}

func (s instrumented) Sync(ctx context.Context, key string, trig syncer.Trigger) (syncer.Outcome, error) {
	start := time.Now()
	out, err := s.next.Sync(ctx, key, trig)
	if err == nil && !trig.Received.IsZero() {
		s.m.lag.WithLabelValues(trig.Source).Observe(max(start.Sub(trig.Received), 0).Seconds())
	}
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Kind == upstream.Throttled {
		s.m.throttled.WithLabelValues(ue.API).Inc()
	}
	return out, err
}
