package metrics

import "testing"

func TestCalloutRefusals(t *testing.T) {
	t.Parallel()
	m := New()
	r := m.CalloutRefusals()
	r.CalloutRefused("bad_signature")
	r.CalloutRefused("bad_signature")
	m.CalloutRefusals().CalloutRefused("no_subscription") // a second call shares the series
	got := scrape(t, m.Handler())
	if got[`zsync_callouts_refused_total{reason="bad_signature"}`] != 2 || got[`zsync_callouts_refused_total{reason="no_subscription"}`] != 1 {
		t.Fatalf("refusal series: %v", got)
	}
}
