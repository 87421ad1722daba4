package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// requestIDOf sends GET /healthz with X-Request-Id sent and returns the id
// answered and the one the access log wrote; it fails if the log or the
// answer holds a rejected id anywhere.
func requestIDOf(t *testing.T, sent string) (answered, logged string) {
	t.Helper()
	b := setup(t, baseConfig())
	rec := b.do(t, req{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-Id": sent}})
	wantStatus(t, rec, http.StatusOK)
	lines := b.logs.FilterMessage("request").All()
	if len(lines) != 1 {
		t.Fatalf("%d access log lines; want 1", len(lines))
	}
	logged, _ = lines[0].ContextMap()["request_id"].(string)
	answered = rec.Header().Get("X-Request-Id")
	if answered != logged {
		t.Fatalf("answered id %q, logged %q; want the same", answered, logged)
	}
	if !validRequestID(answered) {
		t.Fatalf("answered id %q is not a valid request id", answered)
	}
	if answered != sent {
		for _, e := range b.logs.All() {
			if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, sent) {
				t.Fatalf("the rejected id was logged: %.200s", line)
			}
		}
	}
	return answered, logged
}

func TestRequestIDFromClientIsEchoed(t *testing.T) {
	t.Parallel()
	for _, id := range []string{
		"abc",
		"0af7651916cd43dd8448eb211c80319c",
		"f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
		"Root=1-67891233-abcdef012345678912345678"[5:], // an AWS trace id without its "Root="
		"svc.frontend:req_42",
		strings.Repeat("a", maxRequestIDLen),
	} {
		if got, _ := requestIDOf(t, id); got != id {
			t.Errorf("sent %q, answered %q; want it echoed", id, got)
		}
	}
}

func TestRequestIDFromClientRejected(t *testing.T) {
	t.Parallel()
	for name, id := range map[string]string{
		"200 KB":        strings.Repeat("x", 200<<10),
		"one too long":  strings.Repeat("a", maxRequestIDLen+1),
		"newline":       "abc\nlevel=error msg=forged",
		"CRLF":          "abc\r\nSet-Cookie: a=b",
		"NUL":           "abc\x00def",
		"escape":        "abc\x1b[31mred",
		"tab":           "abc\tdef",
		"space":         "abc def",
		"quote":         `abc"def`,
		"non-ASCII":     "abcé",
		"slash":         "../../etc",
		"JSON fragment": `x","level":"error`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, _ := requestIDOf(t, id)
			if got == id {
				t.Fatalf("the invalid id was echoed")
			}
		})
	}
}

func TestRequestIDGeneratedWhenAbsent(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	seen := map[string]bool{}
	for range 3 {
		rec := b.do(t, req{method: http.MethodGet, path: "/healthz"})
		id := rec.Header().Get("X-Request-Id")
		if !validRequestID(id) || seen[id] {
			t.Fatalf("generated id %q: invalid or repeated (%v)", id, seen)
		}
		seen[id] = true
	}
}
