package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// methodNotAllowed answers a request whose path has routes, none of them for
// its method: 405 with Allow. It replaces echo's own handling, which answers
// OPTIONS on such a path with 204 before any route middleware runs, so an
// OPTIONS to an operator route without credentials got a success.
//
// zsync has no CORS configuration: nothing in a browser on another origin is
// meant to call the ingress (asynqmon is same-origin), so there are no
// preflights to answer and OPTIONS is a method like any other a route does
// not serve. Allow lists the route's methods, never OPTIONS. A route that
// serves OPTIONS itself (asynqmon's /monitor, registered with Any) keeps it,
// behind its authentication. Should CORS ever be configured, its middleware
// goes before this one and answers the preflights itself.
func methodNotAllowed(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// The router sets the key only when the path matched and the method
		// did not (the middleware runs after routing).
		allow, ok := c.Get(echo.ContextKeyHeaderAllow).(string)
		if !ok {
			return next(c)
		}
		c.Response().Header().Set(echo.HeaderAllow, withoutOptions(allow))
		return echo.ErrMethodNotAllowed
	}
}

// withoutOptions drops OPTIONS from echo's Allow list ("OPTIONS, GET, POST").
func withoutOptions(allow string) string {
	var out []string
	for m := range strings.SplitSeq(allow, ",") {
		if m = strings.TrimSpace(m); m != "" && m != http.MethodOptions {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}
