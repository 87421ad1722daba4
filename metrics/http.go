package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zsync/zsync/internal/buildinfo"
	"github.com/zsync/zsync/worker"
)

// httpMetrics are the ingress's own series: every request by route and
// status, and the callouts it refused, by reason. Routes are echo's route
// patterns (ids never become labels), so the label sets stay small.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	refused  *prometheus.CounterVec
}

func newHTTPMetrics() httpMetrics {
	return httpMetrics{
		requests: counterVec("zsync_http_requests_total", []string{"route", "method", "status"},
			"HTTP requests answered by the ingress, by route pattern, method and status code."),
		duration: histogramVec("zsync_http_request_duration_seconds", []string{"route"}, []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30},
			"Time to answer an HTTP request, by route pattern."),
		refused: counterVec("zsync_callouts_refused_total", []string{"reason"},
			"Callouts refused with a 4xx (nothing enqueued, Zuora does not retry most of them), by reason."),
	}
}

func buildInfo() prometheus.Collector {
	i := buildinfo.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "zsync_build_info",
		Help:        "Always 1; the labels say which zsync build runs.",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}

// HTTPRequest counts one answered request (api.HTTPMetrics).
func (m *Metrics) HTTPRequest(route, method string, status int, d time.Duration) {
	m.http.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.http.duration.WithLabelValues(route).Observe(d.Seconds())
}

// CalloutSkipped counts one callout the ingress's loop guard skipped
// (api.HTTPMetrics), as zsync_enqueues_total{queue="callouts",status="skipped"}.
func (m *Metrics) CalloutSkipped() { m.Enqueue(worker.QueueCallouts, worker.SkippedStatus) }

// CalloutRefused counts one refused callout (api.HTTPMetrics). reason is one
// of the api's refusal reasons.
func (m *Metrics) CalloutRefused(reason string) { m.http.refused.WithLabelValues(reason).Inc() }

// DeclareRefusals makes each reason's series exist at zero, so that alerts
// and rate() see a refusal from its first occurrence (api.HTTPMetrics).
func (m *Metrics) DeclareRefusals(reasons []string) {
	for _, r := range reasons {
		m.http.refused.WithLabelValues(r)
	}
}
