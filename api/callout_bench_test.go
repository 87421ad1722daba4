package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// nopEnqueuer stores nothing: the benchmark measures the ingress alone.
type nopEnqueuer struct{}

func (nopEnqueuer) Enqueue(context.Context, string, syncer.Trigger, string) (worker.EnqueueStatus, string, error) {
	return worker.Enqueued, "task", nil
}

func (nopEnqueuer) EnqueueAccount(context.Context, string, syncer.Trigger, string) (worker.EnqueueStatus, string, error) {
	return worker.Enqueued, "task", nil
}

// One callout through the whole router, as the ingress bench sends it (Basic
// credentials, a JSON body, a new subscription each time), with a JSON
// logger like production's writing to nowhere: the ingress's own CPU and
// allocations per callout, without HTTP I/O or Redis.
func BenchmarkCalloutRequest(b *testing.B) {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel)
	e, err := New(Config{CalloutUsername: calloutUser, CalloutPassword: calloutPass, OperatorToken: opToken},
		Deps{Enqueuer: nopEnqueuer{}, Outcomes: &fakeOutcomes{}}, zap.New(core, zap.AddCaller()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		body := fmt.Appendf(nil, `{"subscriptionNumber":"A-S%09d","subscriptionId":"8a8%013d","eventType":"SubscriptionUpdated","accountNumber":"A%08d"}`, n, n, n)
		req := httptest.NewRequest(http.MethodPost, "/v1/callouts/zuora", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Zuora-Notification-Id", fmt.Sprintf("bench-%d", n))
		req.SetBasicAuth(calloutUser, calloutPass)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
