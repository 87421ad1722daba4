package api

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// resyncIDs returns n distinct valid ids.
func resyncIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("A-S%08d", i+1)
	}
	return ids
}

// idsBody is {"ids":[…]} for ids, as a script would write it.
func idsBody(ids []string) string {
	var b strings.Builder
	b.WriteString(`{"ids":[`)
	for i, id := range ids {
		if i > 0 {
			b.WriteString(",\n  ")
		}
		b.WriteString(`"` + id + `"`)
	}
	b.WriteString("]}")
	return b.String()
}

// postResync sends body to POST /v1/resyncs over a real listener, streamed
// (chunked, no Content-Length) unless withLength.
func postResync(t *testing.T, srv *httptest.Server, body string, withLength bool) (int, string) {
	t.Helper()
	var r io.Reader = strings.NewReader(body)
	if !withLength {
		r = io.MultiReader(r) // hides the length: the client sends it chunked
	}
	hr, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/resyncs", r)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(body)); withLength != (hr.ContentLength == want) {
		t.Fatalf("request Content-Length %d; with length %v", hr.ContentLength, withLength)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+opToken)
	resp, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatalf("POST /v1/resyncs: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func resyncServer(t *testing.T, cfg Config) (*httptest.Server, *fakeResyncs) {
	t.Helper()
	rs := &fakeResyncs{}
	b := setup(t, cfg, func(d *Deps) { d.Resyncs = rs })
	srv := httptest.NewServer(b.e)
	t.Cleanup(srv.Close)
	return srv, rs
}

// TestResync100000IDs: a list far over MaxBodyBytes (1.5 MB), streamed, is
// taken whole and in order under the default limits.
func TestResync100000IDs(t *testing.T) {
	t.Parallel()
	srv, rs := resyncServer(t, baseConfig())
	ids := resyncIDs(100_000)
	body := idsBody(ids)
	if int64(len(body)) <= defaultMaxBodyBytes {
		t.Fatalf("body of %d bytes is not over MaxBodyBytes", len(body))
	}
	code, answer := postResync(t, srv, body, false)
	if code != http.StatusAccepted {
		t.Fatalf("status %d (%s); want 202", code, answer)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.got) != 1 || !slices.Equal(rs.got[0].IDs, ids) {
		t.Fatalf("jobs started: %d; want one with the %d ids sent, in order", len(rs.got), len(ids))
	}
}

// TestResyncOverLimits: one id over MaxResyncIDs, or a body over its byte
// limit, is a 413 naming both limits, and starts nothing.
func TestResyncOverLimits(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.MaxResyncIDs = 1000
	srv, rs := resyncServer(t, cfg)
	maxBytes := int64(1000 * resyncBytesPerID)
	if got := cfg.withDefaults().resyncMaxBytes(); got != maxBytes {
		t.Fatalf("resyncMaxBytes = %d; want %d", got, maxBytes)
	}
	wantLimits := fmt.Sprintf("at most 1000 ids in a body of at most %d bytes", maxBytes)

	for _, withLength := range []bool{false, true} {
		code, answer := postResync(t, srv, idsBody(resyncIDs(1000)), withLength)
		if code != http.StatusAccepted {
			t.Fatalf("1000 ids (with length %v): status %d (%s); want 202", withLength, code, answer)
		}
	}
	// A body over the byte limit: one id and padding.
	padded := `{"ids":["A-S1"]` + strings.Repeat(" ", int(maxBytes)) + "}"
	for name, body := range map[string]string{
		"1001 ids":         idsBody(resyncIDs(1001)),
		"1001 ids, nested": `{"status":null,"ids":` + idsBody(resyncIDs(1001))[len(`{"ids":`):],
		"bytes":            padded,
	} {
		for _, withLength := range []bool{false, true} {
			code, answer := postResync(t, srv, body, withLength)
			if code != http.StatusRequestEntityTooLarge || !strings.Contains(answer, wantLimits) {
				t.Errorf("%s (with length %v): status %d (%s); want 413 naming %q", name, withLength, code, answer, wantLimits)
			}
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.got) != 2 {
		t.Fatalf("%d jobs started; want only the two within the limits", len(rs.got))
	}
}

// TestResyncOtherRoutesKeepMaxBodyBytes: the resync's larger limit is its
// own; an operator POST elsewhere is still held to MaxBodyBytes.
func TestResyncOtherRoutesKeepMaxBodyBytes(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig(), func(d *Deps) { d.Resyncs = &fakeResyncs{} })
	big := `{"x":"` + strings.Repeat("a", defaultMaxBodyBytes) + `"}`
	wantError(t, b.do(t, opPost("/v1/subscriptions/A-S1/sync", big)), http.StatusRequestEntityTooLarge)
	wantError(t, b.do(t, callout("/v1/callouts/zuora", "application/json", big)), http.StatusRequestEntityTooLarge)
}

// TestResyncInvalidIDsAmongMany: every invalid id is counted, the first ten
// named.
func TestResyncInvalidIDsAmongMany(t *testing.T) {
	t.Parallel()
	srv, rs := resyncServer(t, baseConfig())
	ids := resyncIDs(20_000)
	for i := 0; i < len(ids); i += 400 {
		ids[i] = fmt.Sprintf("bad/%d", i)
	}
	code, answer := postResync(t, srv, idsBody(ids), false)
	if code != http.StatusBadRequest || !strings.Contains(answer, "50 invalid ids: ") || !strings.Contains(answer, " and 40 more") ||
		!strings.Contains(answer, `\"bad/0\"`) || !strings.Contains(answer, `\"bad/3600\"`) || strings.Contains(answer, "bad/4000") {
		t.Fatalf("status %d (%s); want 400 counting 50 invalid ids, naming the first 10", code, answer)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.got) != 0 {
		t.Fatalf("a job started with invalid ids")
	}
}

// TestDecodeResync covers the body as the former json.Decoder read it.
func TestDecodeResync(t *testing.T) {
	t.Parallel()
	ok := map[string]ResyncSelection{
		`{"ids":["A-S1","sub-0123456789abcdef"]}`:        {IDs: []string{"A-S1", "sub-0123456789abcdef"}},
		`{"IDS":["A-S1"]}`:                               {IDs: []string{"A-S1"}},
		`{"ids":null,"status":"Active"}`:                 {Status: "Active"},
		`{"status":"Active","updated_since":null}`:       {Status: "Active"},
		` {"ids":["A-S2"],"ids":["A-S1"]} trailing text`: {IDs: []string{"A-S1"}},
	}
	for body, want := range ok {
		got, err := parseResync(strings.NewReader(body), 10)
		if err != nil || !slices.Equal(got.IDs, want.IDs) || got.Status != want.Status {
			t.Errorf("%s: %+v, %v; want %+v", body, got, err, want)
		}
	}
	for _, body := range []string{
		``, `[]`, `"ids"`, `null`, `{"ids":"A-S1"}`, `{"ids":[1]}`, `{"ids":[["A-S1"]]}`, `{"ids":[{"id":"A-S1"}]}`,
		`{"ids":["A-S1"]`, `{"ids":["A-S1",]}`, `{"status":5}`, `{"status":["Active"]}`, `{"updated_since":{}}`,
		`{"Queue":"callouts"}`, `{"ids":["A-S1"],"ids":[]}`, `{"ids":[]}`,
	} {
		if _, err := parseResync(strings.NewReader(body), 10); err == nil || overResyncLimit(err) {
			t.Errorf("%q: error %v; want a 400", body, err)
		}
	}
	if _, err := parseResync(strings.NewReader(idsBody(resyncIDs(11))), 10); !overResyncLimit(err) {
		t.Errorf("11 ids over a limit of 10: %v; want errTooManyIDs", err)
	}
}

func TestMaxResyncIDsValidated(t *testing.T) {
	t.Parallel()
	for _, n := range []int{-1, maxMaxResyncIDs + 1} {
		cfg := baseConfig()
		cfg.MaxResyncIDs = n
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "MaxResyncIDs") {
			t.Errorf("MaxResyncIDs %d: %v; want an error naming it", n, err)
		}
	}
	for _, n := range []int{0, 1, maxMaxResyncIDs} {
		cfg := baseConfig()
		cfg.MaxResyncIDs = n
		if err := cfg.Validate(); err != nil {
			t.Errorf("MaxResyncIDs %d: %v", n, err)
		}
	}
	if got := baseConfig().withDefaults().MaxResyncIDs; got != defaultMaxResyncIDs {
		t.Errorf("default MaxResyncIDs = %d; want %d", got, defaultMaxResyncIDs)
	}
}
