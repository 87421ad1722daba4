package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// CalloutRefusals counts the callouts (and token requests) the ingress
// refused, by reason; it implements api.Refusals.
type CalloutRefusals struct{ c *prometheus.CounterVec }

// CalloutRefusals registers zsync_callouts_refused_total on m's registry
// (once; a second call returns the same series).
func (m *Metrics) CalloutRefusals() *CalloutRefusals {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zsync_callouts_refused_total",
		Help: "Callouts and token requests the ingress refused with a 4xx, by reason (no_subscription, bad_signature, expired_token, …). Zuora does not retry these: the change waits for the sweep.",
	}, []string{"reason"})
	if err := m.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			c = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return &CalloutRefusals{c: c}
}

// CalloutRefused counts one refusal.
func (r *CalloutRefusals) CalloutRefused(reason string) { r.c.WithLabelValues(reason).Inc() }
