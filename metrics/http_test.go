package metrics

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/api"
)

var _ api.HTTPMetrics = (*Metrics)(nil)

// The ingress's series, and zsync_build_info, as Prometheus scrapes them.
func TestHTTPSeriesAndBuildInfo(t *testing.T) {
	t.Parallel()
	m := New()
	m.DeclareRefusals(api.RefusalReasons)
	m.HTTPRequest("/v1/callouts/zuora", http.MethodPost, 200, 3*time.Millisecond)
	m.HTTPRequest("/v1/callouts/zuora", http.MethodPost, 401, time.Millisecond)
	m.CalloutRefused(api.RefusalBadSignature)
	m.CalloutSkipped()
	got := scrape(t, m.Handler())

	for k, want := range map[string]float64{
		`zsync_http_requests_total{method="POST",route="/v1/callouts/zuora",status="200"}`:   1,
		`zsync_http_requests_total{method="POST",route="/v1/callouts/zuora",status="401"}`:   1,
		`zsync_http_request_duration_seconds_count{route="/v1/callouts/zuora"}`:              2,
		`zsync_http_request_duration_seconds_bucket{route="/v1/callouts/zuora",le="0.0025"}`: 1,
		`zsync_callouts_refused_total{reason="bad_signature"}`:                               1,
		`zsync_callouts_refused_total{reason="` + api.RefusalInvalidID + `"}`:                0,
		`zsync_enqueues_total{queue="callouts",status="skipped"}`:                            1,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v); want %v", k, v, ok, want)
		}
	}
	found := false
	for k, v := range got {
		if strings.HasPrefix(k, "zsync_build_info{") && v == 1 &&
			strings.Contains(k, `goversion="`+runtime.Version()+`"`) && strings.Contains(k, `version="`) && strings.Contains(k, `revision="`) {
			found = true
		}
	}
	if !found {
		t.Error("no zsync_build_info{goversion,revision,version} 1 series")
	}
}
