package check

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/zsync/zsync/internal/clip"
)

// maxKept bounds what an exchange keeps of each body for evidence; the
// client still gets the whole answer.
const maxKept = 64 << 10

// exchange is one HTTP request and its answer, as a check saw it.
type exchange struct {
	method, path string
	reqHeader    http.Header
	reqBody      []byte
	status       int
	header       http.Header
	body         []byte
}

// request is "METHOD path", with the body's start for writes.
func (ex *exchange) request() string {
	s := ex.method + " " + ex.path
	if len(ex.reqBody) > 0 {
		// Go's JSON escapes <, > and &: shown as sent they'd hide a query.
		s += " " + clip.Line(unescaper.Replace(string(ex.reqBody)), 240)
	}
	return s
}

var unescaper = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&")

// recorder is the clients' transport: every exchange is kept, so a check
// judges the real clients' requests by their answers.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	ex   []*exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	base := r.base
	if base == nil {
		base = http.DefaultTransport
	}
	ex := &exchange{method: req.Method, path: req.URL.RequestURI(), reqHeader: req.Header.Clone()}
	if req.Body != nil && req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			ex.reqBody, _ = io.ReadAll(io.LimitReader(b, maxKept))
			_ = b.Close()
		}
	}
	if strings.HasSuffix(req.URL.Path, "/token") {
		ex.reqBody = nil // client credentials
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		r.keep(ex)
		return nil, err
	}
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	ex.status, ex.header = resp.StatusCode, resp.Header.Clone()
	ex.body = body
	if len(body) > maxKept {
		ex.body = body[:maxKept]
	}
	r.keep(ex)
	return resp, rerr
}

func (r *recorder) keep(ex *exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ex = append(r.ex, ex)
}

// mark is a point in the record; since returns what came after it.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ex)
}

func (r *recorder) since(m int) []*exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*exchange(nil), r.ex[m:]...)
}

// last is the latest exchange since m whose method matches (empty: any)
// and whose path contains part; nil if none.
func (r *recorder) last(m int, method, part string) *exchange {
	exs := r.since(m)
	for i := len(exs) - 1; i >= 0; i-- {
		if (method == "" || exs[i].method == method) && strings.Contains(exs[i].path, part) {
			return exs[i]
		}
	}
	return nil
}
