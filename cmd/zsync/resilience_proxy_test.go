package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zsync/zsync/limio"
)

// upstreamProxy sits between zsync processes and a sandbox, the way a slow
// gateway does: it logs every write it forwards (when it reached the
// sandbox, when the answer came back) and can hold a request before
// forwarding it. A held request is forwarded even when the client has given
// up meanwhile (its write lands late), detached from the client's context.
type upstreamProxy struct {
	URL    string
	target string

	mu   sync.Mutex
	hold func(r *http.Request) <-chan struct{} // nil channel: forward at once
	log  []proxied
	held int
	// abandoned counts held requests whose client gave up while held.
	abandoned int
}

// proxied is one request the proxy forwarded.
type proxied struct {
	method, path string
	arrived      time.Time // reached the proxy: in flight for its sender from here
	sent, done   time.Time // forwarded to the sandbox; its answer read
	status       int
	lateClient   bool   // the client had given up before the request was forwarded
	body         []byte // of a write
}

func newUpstreamProxy(t *testing.T, target string) *upstreamProxy {
	t.Helper()
	p := &upstreamProxy{target: target}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// setHold sets the rule that decides which requests wait, and for what.
func (p *upstreamProxy) setHold(f func(r *http.Request) <-chan struct{}) {
	p.mu.Lock()
	p.hold = f
	p.mu.Unlock()
}

// heldNow is how many requests are waiting.
func (p *upstreamProxy) heldNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// abandonedNow is how many held requests were given up by their client
// while they waited.
func (p *upstreamProxy) abandonedNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.abandoned
}

func (p *upstreamProxy) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	var wait <-chan struct{}
	if p.hold != nil {
		wait = p.hold(r)
	}
	if wait != nil {
		p.held++
	}
	p.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-r.Context().Done():
			p.mu.Lock()
			p.abandoned++
			p.mu.Unlock()
			<-wait
		}
		p.mu.Lock()
		p.held--
		p.mu.Unlock()
	}
	rec := proxied{method: r.Method, path: r.URL.Path, arrived: arrived, lateClient: r.Context().Err() != nil}
	if r.Method != http.MethodGet {
		rec.body = body
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	out, _ := http.NewRequestWithContext(ctx, r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	out.Header = r.Header.Clone()
	rec.sent = time.Now()
	resp, err := http.DefaultTransport.RoundTrip(out)
	var respBody []byte
	if err == nil {
		respBody, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		rec.status = resp.StatusCode
	}
	rec.done = time.Now()
	p.mu.Lock()
	p.log = append(p.log, rec)
	p.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
}

// requests returns what was forwarded so far.
func (p *upstreamProxy) requests() []proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]proxied(nil), p.log...)
}

// subWritePath is the Limio path of subscription i's own object: every
// sync that changes the subscription writes it once.
func subWritePath(i int) string {
	return "/api/objects/limio/" + limio.PathSubscriptions + "/" + limio.NewID("sub", subNumber(i))
}

// overlappingWrites lists the pairs of writes to one Limio subscription
// object that were in flight at the same time, from reaching the proxy (a
// held write is in flight for its sender while it waits) to the sandbox's
// answer: two syncs writing at once.
func overlappingWrites(reqs []proxied) []string {
	by := map[string][]proxied{}
	for _, r := range reqs {
		if r.method == http.MethodPut && strings.HasPrefix(r.path, "/api/objects/limio/"+limio.PathSubscriptions+"/") {
			by[r.path] = append(by[r.path], r)
		}
	}
	var out []string
	for path, ws := range by {
		sort.Slice(ws, func(a, b int) bool { return ws[a].arrived.Before(ws[b].arrived) })
		for k := 1; k < len(ws); k++ {
			for j := range k {
				if ws[k].arrived.Before(ws[j].done) {
					out = append(out, fmt.Sprintf("%s: a write sent at %s while the one sent at %s was in flight (until %s)",
						path, ws[k].arrived.Format("15:04:05.000"), ws[j].arrived.Format("15:04:05.000"), ws[j].done.Format("15:04:05.000")))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
