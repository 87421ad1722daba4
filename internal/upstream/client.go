package upstream

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/zsync/zsync/internal/clip"
)

// defaultMaxBody bounds how much of a response is read: a misbehaving upstream
// can't make a worker allocate without limit.
const defaultMaxBody = 8 << 20

// Limiter gates every request (Zuora's tenant-wide concurrency and rate).
type Limiter interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// ObservingLimiter is a Limiter that also hears, for each request it let
// through, what the response said about the API's limits (ParseLimits),
// with the slot that covered it.
type ObservingLimiter interface {
	Limiter
	AcquireObserved(ctx context.Context) (release func(), observe func(status int, l Limits), err error)
}

// Client sends authenticated JSON requests and turns every failure into an
// *Error. The API-specific parts are hooks.
type Client struct {
	API     string // "zuora" or "limio", for errors and metrics
	BaseURL string // scheme://host[/prefix], no trailing slash
	HTTP    *http.Client
	Tokens  *TokenSource
	Limiter Limiter // optional
	MaxBody int64   // 0 means defaultMaxBody

	// Prepare sets per-request headers (API version, tracking id).
	Prepare func(*http.Request)
	// CheckBody finds an API-level error in a response body, including in an
	// HTTP 200 (Zuora's success:false). It returns nil when the body is fine,
	// or for a non-2xx body it cannot read (a generic error is built then).
	CheckBody func(status int, body []byte) *Error
	// Decode decodes a good 2xx body into out; nil means json.Unmarshal. An
	// *Error it returns is the call's error (its API, Op, status and request
	// id filled in); any other error means the body is not the API's JSON,
	// retryable. One pass: an API client that needs to tell a body that
	// isn't JSON from a value of the wrong form decides here, without
	// decoding the body twice.
	Decode func(body []byte, out any) error
	// OnRetryAfter is told when the API asked callers to wait (429 / 503):
	// Retry-After, or for a 429 without it RateLimit-Reset (see ParseLimits).
	OnRetryAfter func(d time.Duration)
	// Observe is told about every response (status 0 if none) and its latency.
	Observe func(op string, status int, d time.Duration)
	Now     func() time.Time
}

// Request is one call. Path is already escaped; Op names it for errors and
// metrics without ids (e.g. "GET /v1/subscriptions/{key}").
type Request struct {
	Method string
	Path   string
	Op     string
	Query  url.Values
	Body   any // marshalled as JSON when not nil
}

// Do sends req and decodes a 2xx JSON answer into out (when out is not nil).
// A 401 drops the token and is retried once with a fresh one.
func (c *Client) Do(ctx context.Context, req Request, out any) error {
	var payload []byte
	if req.Body != nil {
		b, err := json.Marshal(req.Body)
		if err != nil {
			return &Error{API: c.API, Op: req.Op, Kind: Permanent, Message: "encode request", Err: err}
		}
		payload = b
	}
	for attempt := 0; ; attempt++ {
		status, body, tok, err := c.send(ctx, req, payload)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && attempt == 0 && c.Tokens != nil {
			c.Tokens.Invalidate(tok)
			continue
		}
		if body.err != nil {
			return body.err
		}
		if out == nil || len(body.bytes) == 0 {
			return nil
		}
		decode := c.Decode
		if decode == nil {
			decode = json.Unmarshal
		}
		if err := decode(body.bytes, out); err != nil {
			if e, ok := err.(*Error); ok {
				e.API, e.Op, e.StatusCode = cmp.Or(e.API, c.API), cmp.Or(e.Op, req.Op), cmp.Or(e.StatusCode, status)
				e.RequestID = cmp.Or(e.RequestID, body.requestID)
				return e
			}
			// Retryable: a 2xx that isn't the API's JSON is most often a proxy
			// or gateway page; a genuinely bad object fails every attempt and
			// is archived when the retries run out.
			return &Error{API: c.API, Op: req.Op, StatusCode: status, Kind: Retryable,
				Message: "decode response", Err: err, RequestID: body.requestID}
		}
		return nil
	}
}

type response struct {
	bytes     []byte
	requestID string
	err       *Error // set for non-2xx, and for an error inside a 2xx
}

func (c *Client) send(ctx context.Context, req Request, payload []byte) (int, response, string, error) {
	u := c.BaseURL + req.Path
	if len(req.Query) > 0 {
		u += "?" + req.Query.Encode()
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, u, rd)
	if err != nil {
		return 0, response{}, "", &Error{API: c.API, Op: req.Op, Kind: Permanent, Message: "build request", Err: err}
	}
	hreq.Header.Set("Accept", "application/json")
	if payload != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	var tok string
	if c.Tokens != nil {
		if tok, err = c.Tokens.Token(ctx); err != nil {
			return 0, response{}, "", err
		}
		hreq.Header.Set("Authorization", "Bearer "+tok)
	}
	if c.Prepare != nil {
		c.Prepare(hreq)
	}
	// The limiter's slot covers the exchange with the API, not our parsing
	// of the answer: it is handed back as soon as the body is read.
	free := func() {}
	observe := func(int, Limits) {}
	if c.Limiter != nil {
		var release func()
		var err error
		if ol, ok := c.Limiter.(ObservingLimiter); ok {
			release, observe, err = ol.AcquireObserved(ctx)
		} else {
			release, err = c.Limiter.Acquire(ctx)
		}
		if err != nil {
			return 0, response{}, tok, err
		}
		var once sync.Once
		free = func() { once.Do(release) }
		defer free()
	}

	start := c.now()
	resp, err := c.HTTP.Do(hreq)
	if err != nil {
		c.observe(req.Op, 0, start)
		return 0, response{}, tok, transportError(ctx, c.API, req.Op, err)
	}
	defer resp.Body.Close()
	limit := c.MaxBody
	if limit <= 0 {
		limit = defaultMaxBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	free()
	c.observe(req.Op, resp.StatusCode, start)
	if err != nil {
		return 0, response{}, tok, transportError(ctx, c.API, req.Op, err)
	}
	r := response{bytes: b, requestID: firstHeader(resp.Header, "Zuora-Request-Id", "X-Request-Id")}
	if int64(len(b)) > limit {
		return 0, r, tok, &Error{API: c.API, Op: req.Op, StatusCode: resp.StatusCode, Kind: Permanent,
			Message: fmt.Sprintf("response larger than %d bytes", limit), RequestID: r.requestID}
	}
	limits := ParseLimits(resp.StatusCode, resp.Header, c.now())
	retryAfter := limits.Wait
	if retryAfter > 0 && c.OnRetryAfter != nil {
		c.OnRetryAfter(retryAfter)
	}
	observe(resp.StatusCode, limits)

	var apiErr *Error
	if c.CheckBody != nil {
		apiErr = c.CheckBody(resp.StatusCode, b)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if apiErr == nil && !ok && resp.StatusCode != http.StatusUnauthorized {
		apiErr = &Error{Kind: KindForStatus(resp.StatusCode), Message: snippet(b)}
	}
	if apiErr != nil {
		apiErr.API, apiErr.Op = c.API, req.Op
		if apiErr.StatusCode == 0 {
			apiErr.StatusCode = resp.StatusCode
		}
		if apiErr.RequestID == "" {
			apiErr.RequestID = r.requestID
		}
		apiErr.TrackID = hreq.Header.Get("Zuora-Track-Id")
		if apiErr.RetryAfter == 0 {
			apiErr.RetryAfter = retryAfter
		}
		r.err = apiErr
	}
	if resp.StatusCode == http.StatusUnauthorized && r.err == nil {
		r.err = &Error{API: c.API, Op: req.Op, StatusCode: resp.StatusCode, Kind: Unauthorized,
			Message: "unauthorized (check client id and secret)", RequestID: r.requestID}
	}
	return resp.StatusCode, r, tok, nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) observe(op string, status int, start time.Time) {
	if c.Observe != nil {
		c.Observe(op, status, c.now().Sub(start))
	}
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// snippet keeps an error body short and on one line for messages.
func snippet(b []byte) string { return clip.Line(string(b), 200) }

// PathEscape escapes one path segment; ids are validated by callers too, this
// is the second fence against "../" reaching a URL.
func PathEscape(s string) string { return url.PathEscape(s) }

// IsContextError reports whether err is the caller's own cancellation.
func IsContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
