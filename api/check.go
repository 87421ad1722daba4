package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/zsync/zsync/check"
)

// Checker runs zsync check against the configured tenants, read-only (the
// write checks are for the command line, with a named test record).
type Checker interface {
	Check(ctx context.Context, subscription string) check.Report
}

// checkTimeout bounds one GET /v1/check: a few dozen requests to two APIs.
const checkTimeout = 2 * time.Minute

// routeCheck serves GET /v1/check[?subscription=A-S…] behind auth.
func (s *server) routeCheck(e *echo.Echo, auth echo.MiddlewareFunc) {
	e.GET("/v1/check", s.check, auth)
}

// check answers the report: 200 whatever the verdicts (ok says whether every
// assumption held), 501 in a process without the upstream settings.
func (s *server) check(c echo.Context) error {
	if s.deps.Checker == nil {
		return errStatus(http.StatusNotImplemented, "check not available in this process (no zuora/limio settings)")
	}
	sub := c.QueryParam("subscription")
	if sub != "" {
		if err := validateID(sub); err != nil {
			return errStatus(http.StatusBadRequest, err.Error())
		}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), checkTimeout)
	defer cancel()
	return c.JSON(http.StatusOK, s.deps.Checker.Check(ctx, sub))
}
