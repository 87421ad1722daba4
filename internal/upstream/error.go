// Package upstream is the HTTP plumbing the Zuora and Limio clients share:
// OAuth client-credentials tokens, one request path with a bounded body, and
// the one error type whose classification (permanent or retryable, not found,
// Retry-After) is decided here, once, for every caller.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ErrNotFound matches (errors.Is) an *Error for a missing object.
var ErrNotFound = errors.New("not found")

// ErrThrottled matches (errors.Is) an *Error that asks the caller to wait.
var ErrThrottled = errors.New("throttled")

// Kind is how an error should be treated by whoever retries.
type Kind int

const (
	// Permanent errors will fail the same way again: don't retry.
	Permanent Kind = iota
	// Retryable errors are transient: network, 5xx, 408, 409, 429, limits.
	Retryable
	// NotFound is a permanent error for a missing object.
	NotFound
	// Throttled is retryable, and not a failure: the API (429) or zsync's own
	// tenant limiter asked the caller to wait RetryAfter.
	Throttled
	// Unauthorized is a 401 that a freshly fetched token did not cure, or a
	// token endpoint's 401: the credentials are wrong, or are being rotated
	// (a new client secret reaches one side before the other). Worth a few
	// tries over a minute or so, not a retry budget's worth.
	Unauthorized
)

func (k Kind) String() string {
	switch k {
	case Retryable:
		return "retryable"
	case NotFound:
		return "not_found"
	case Throttled:
		return "throttled"
	case Unauthorized:
		return "unauthorized"
	default:
		return "permanent"
	}
}

// Error is every failure a client returns, except a cancelled context.
type Error struct {
	API        string        // "zuora" or "limio"
	Op         string        // method and path template, e.g. "GET /v1/subscriptions/{key}"
	StatusCode int           // HTTP status; 0 when no response arrived
	Code       string        // the API's own error code, when it sent one
	Message    string        // the API's message, or a description of the failure
	RequestID  string        // the API's request id, for support tickets
	TrackID    string        // the id zsync sent (Zuora-Track-Id), to find the call in both sides' logs
	RetryAfter time.Duration // from a Retry-After header, when sent
	Kind       Kind
	Err        error // the underlying transport or decode error, if any
}

func (e *Error) Error() string {
	s := e.API + ": " + e.Op + ": "
	if e.StatusCode != 0 {
		s += "HTTP " + strconv.Itoa(e.StatusCode)
	} else {
		s += "no response"
	}
	if e.Code != "" {
		s += " code " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	if e.TrackID != "" {
		s += " (track " + e.TrackID + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true for not-found errors.
func (e *Error) Is(target error) bool {
	return (target == ErrNotFound && e.Kind == NotFound) || (target == ErrThrottled && e.Kind == Throttled)
}

// IsRetryable reports whether err is worth retrying later. Context
// cancellation and deadline are not: the caller gave up.
func IsRetryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind == Retryable || e.Kind == Throttled
	}
	return false
}

// RetryAfter is the delay the API asked for, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// KindForStatus classifies an HTTP status: 429 is throttled, 5xx, 408 and
// 409 are retryable, 404 is not found, 401 unauthorized, every other 4xx is
// permanent.
func KindForStatus(status int) Kind {
	switch {
	case status == http.StatusNotFound:
		return NotFound
	case status == http.StatusUnauthorized:
		return Unauthorized
	case status == http.StatusTooManyRequests:
		return Throttled
	case status == http.StatusRequestTimeout, status == http.StatusConflict, status >= 500:
		return Retryable
	default:
		return Permanent
	}
}

// parseRetryAfter reads a Retry-After value in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// transportError wraps a failure to get a response. A cancelled context is
// returned as is: the caller gave up, it is neither permanent nor retryable.
func transportError(ctx context.Context, api, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %s: %w", api, op, ctxErr)
	}
	return &Error{API: api, Op: op, Kind: Retryable, Message: "request failed", Err: err}
}
