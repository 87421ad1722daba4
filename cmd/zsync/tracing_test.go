package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/zsync/zsync/internal/tracing"
)

// One callout makes one connected trace: the ingress's server span, the
// enqueue, the task run (its parent carried in the asynq task headers), the
// lock, and every Zuora and Limio call; no span carries a credential.
func TestCalloutMakesOneTrace(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewProvider("zsync-test", sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	st := startInProcess(t, "callout-pass-SECRET", "op-token-SECRET", tp)

	req, _ := http.NewRequest(http.MethodPost, st.url+"/api/plugins/zuora/sync/subscription/A-S00000201", nil)
	req.SetBasicAuth("zuora", "callout-pass-SECRET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callout: %d", resp.StatusCode)
	}

	var spans tracetest.SpanStubs
	byName := func(name string) []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range spans {
			if s.Name == name {
				out = append(out, s)
			}
		}
		return out
	}
	eventually(t, 30*time.Second, "the sync's span", func() bool {
		spans = exp.GetSpans()
		return len(byName("zsync.sync")) > 0
	})
	root := byName("POST /api/plugins/zuora/sync/subscription/*")
	if len(root) != 1 {
		t.Fatalf("%d callout spans; want 1 (spans: %v)", len(root), names(spans))
	}
	traceID := root[0].SpanContext.TraceID()
	parentOf := map[string]string{} // span name → parent name, within the trace
	idName := map[string]string{}
	for _, s := range spans {
		if s.SpanContext.TraceID() == traceID {
			idName[s.SpanContext.SpanID().String()] = s.Name
		}
	}
	var upstream int
	for _, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			continue
		}
		parentOf[s.Name] = idName[s.Parent.SpanID().String()]
		if strings.HasPrefix(s.Name, "GET ") || strings.HasPrefix(s.Name, "POST ") && s.Name != root[0].Name {
			upstream++
		}
		for _, a := range s.Attributes {
			if v := a.Value.String(); strings.Contains(v, "SECRET") {
				t.Errorf("span %s attribute %s carries a secret", s.Name, a.Key)
			}
		}
	}
	for child, parent := range map[string]string{
		"zsync.enqueue": root[0].Name,
		"zsync.sync":    "zsync.enqueue",
		"zsync.lock":    "zsync.sync",
	} {
		if got, ok := parentOf[child]; !ok || got != parent {
			t.Errorf("span %s: parent %q (in trace: %v); want %q", child, got, ok, parent)
		}
	}
	// The Zuora reads (subscription, account, preview) and the Limio reads
	// and writes, each a client span in the same trace.
	if upstream < 5 {
		t.Errorf("%d upstream call spans in the callout's trace; want every Zuora and Limio call (spans: %v)", upstream, names(spans))
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
