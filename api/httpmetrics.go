package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// HTTPMetrics counts what the ingress answers (metrics.Metrics implements
// it). Optional: without it nothing is counted.
type HTTPMetrics interface {
	// HTTPRequest counts one answered request; route is the route pattern
	// ("/v1/subscriptions/:id/sync"), "unmatched" for any other path.
	HTTPRequest(route, method string, status int, d time.Duration)
	// CalloutRefused counts one callout answered 4xx, by one of
	// RefusalReasons.
	CalloutRefused(reason string)
	// DeclareRefusals is called once with RefusalReasons.
	DeclareRefusals(reasons []string)
	// CalloutSkipped counts one callout the ingress's loop guard skipped
	// (answered 200, nothing enqueued).
	CalloutSkipped()
}

// Why a callout was refused: the reason label of zsync_callouts_refused_total.
// A handler that refuses a callout for a reason of its own names it with
// refuseFor (and adds it here); otherwise the status code decides.
const (
	RefusalChallenge        = "basic_challenge"    // 401 to a request without credentials: Zuora's normal first round trip
	RefusalBadCredentials   = "bad_credentials"    // 401: wrong Basic credentials
	RefusalBadSignature     = "bad_signature"      // 401: missing or wrong HMAC
	RefusalSourceNotAllowed = "source_not_allowed" // 403: outside callout.allow_ips
	RefusalBodyTooLarge     = "body_too_large"     // 413
	RefusalUnsupportedType  = "unsupported_type"   // 415: not JSON, XML or form
	RefusalInvalidID        = "invalid_id"         // 400: the subscription id (path or body) fails validation
	RefusalInvalidBody      = "invalid_body"       // 400: the body can't be read or names no subscription
	RefusalOther            = "other"              // any other 4xx
)

// RefusalReasons lists every reason (these and the handlers' own, in
// refusals.go), so each series exists from the start.
var RefusalReasons = uniqueReasons(append([]string{
	RefusalChallenge, RefusalBadCredentials, RefusalBadSignature, RefusalSourceNotAllowed, RefusalBodyTooLarge,
	RefusalUnsupportedType, RefusalInvalidID, RefusalInvalidBody, RefusalOther,
}, handlerReasons...))

func uniqueReasons(rs []string) []string {
	seen := map[string]bool{}
	out := rs[:0]
	for _, r := range rs {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

const (
	ctxRefusal        = "zsync.refusal"
	ctxRefusalCounted = "zsync.refusal.counted"
)

// refuseFor names why the callout being handled is refused, before the
// handler returns its 4xx.
func refuseFor(c echo.Context, reason string) { c.Set(ctxRefusal, reason) }

// refusalReason is the reason of a refused callout: what the handler named,
// else what the status says.
func refusalReason(c echo.Context, status int) string {
	if r, ok := c.Get(ctxRefusal).(string); ok && r != "" {
		for _, known := range RefusalReasons {
			if r == known {
				return r
			}
		}
		return RefusalOther
	}
	switch status {
	case http.StatusUnauthorized:
		if c.Request().Header.Get(echo.HeaderAuthorization) == "" {
			return RefusalChallenge
		}
		return RefusalBadCredentials
	case http.StatusForbidden:
		return RefusalSourceNotAllowed
	case http.StatusRequestEntityTooLarge:
		return RefusalBodyTooLarge
	case http.StatusUnsupportedMediaType:
		return RefusalUnsupportedType
	case http.StatusBadRequest:
		return RefusalInvalidBody
	}
	return RefusalOther
}

// routeUnmatched labels every request no route matched (scanners, typos):
// raw paths would make a series per path.
const routeUnmatched = "unmatched"

// httpMetrics is the outermost middleware: it sees the status the access log
// and the error handler settled on.
func (s *server) httpMetrics(routes map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			route := c.Path()
			if !routes[route] {
				route = routeUnmatched
			}
			status := c.Response().Status
			s.deps.HTTPMetrics.HTTPRequest(route, c.Request().Method, status, time.Since(start))
			if status >= 400 && status < 500 && isCalloutRoute(route) && c.Get(ctxRefusalCounted) == nil {
				s.deps.HTTPMetrics.CalloutRefused(refusalReason(c, status))
			}
			return nil
		}
	}
}

func isCalloutRoute(route string) bool {
	return route == calloutByBodyPath || route == LimioEventsPath || route == TokenPath || strings.HasPrefix(route, calloutByPathPrefix)
}

// The callout routes, as registered.
const (
	calloutByPathPrefix = "/api/plugins/zuora/sync/subscription/"
	calloutByBodyPath   = "/v1/callouts/zuora"
)
