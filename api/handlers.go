package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// headerNotificationID is the same across Zuora's retries of one callout.
const headerNotificationID = "Zuora-Notification-Id"

// calloutResponse is the 200 answer Zuora parses ("success":true).
type calloutResponse struct {
	Success      bool   `json:"success"`
	Status       string `json:"status"`
	Subscription string `json:"subscription"`
	TaskID       string `json:"task_id,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

// calloutAuth authenticates a callout, in order: IP allow-list (403), Basic
// (401 with the challenge Zuora waits for before sending credentials), then
// reads the body (413) and checks the HMAC over the raw bytes (401). With
// Basic and HMAC both configured, both must pass.
func (s *server) calloutAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if nid := r.Header.Get(headerNotificationID); nid != "" {
			c.Set(ctxNotification, truncate(nid, 128))
		}
		if !ipAllowed(s.allow, c.RealIP()) {
			return errStatus(http.StatusForbidden, "source address not allowed")
		}
		if !s.cfg.AuthDisabled && s.cfg.CalloutUsername != "" {
			if _, ok := basicMatches(r, s.cfg.CalloutUsername, s.cfg.CalloutPassword); !ok {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, calloutRealm)
				return errStatus(http.StatusUnauthorized, "unauthorized")
			}
		}
		body, err := readBody(r)
		if err != nil {
			return err
		}
		if !s.cfg.AuthDisabled && s.hmac != nil && !s.hmac.verify(r.Header.Get(s.hmac.header), body) {
			refuseFor(c, RefusalBadSignature)
			return errStatus(http.StatusUnauthorized, "bad or missing signature")
		}
		c.Set(ctxBody, body)
		return next(c)
	}
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errStatus(http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", tooBig.Limit))
		}
		return nil, errStatus(http.StatusBadRequest, "reading body failed")
	}
	return b, nil
}

// calloutByPath is Limio's own endpoint: the key is in the path, the body
// (optional) only adds the trigger details.
func (s *server) calloutByPath(c echo.Context) error {
	id := c.Param("*")
	if err := validateID(id); err != nil {
		refuseFor(c, RefusalInvalidID)
		return errStatus(http.StatusBadRequest, err.Error())
	}
	co, err := s.parseBody(c)
	if err != nil {
		return err
	}
	if s.hmacOnly() && co.Subscription != id {
		// The signature covers the body, not the path: without Basic
		// credentials, a signed body replayed to another path (or an empty
		// body, signed the same for every callout) must not sync another
		// subscription.
		return errStatus(http.StatusBadRequest, "with HMAC-only authentication the signed body must name the subscription in the path")
	}
	return s.callout(c, id, co)
}

// hmacOnly reports whether callouts are authenticated by the body's HMAC
// alone (no Basic credentials).
func (s *server) hmacOnly() bool {
	return !s.cfg.AuthDisabled && s.hmac != nil && s.cfg.CalloutUsername == ""
}

// calloutByBody takes the subscription number from the body.
func (s *server) calloutByBody(c echo.Context) error {
	co, err := s.parseBody(c)
	if err != nil {
		return err
	}
	if co.Subscription == "" {
		return errStatus(http.StatusBadRequest, "no subscription in body: send subscriptionNumber (or subscriptionName)")
	}
	if err := validateID(co.Subscription); err != nil {
		refuseFor(c, RefusalInvalidID)
		return errStatus(http.StatusBadRequest, err.Error())
	}
	return s.callout(c, co.Subscription, co)
}

func (s *server) parseBody(c echo.Context) (Callout, error) {
	body, _ := c.Get(ctxBody).([]byte)
	co, err := parseCallout(c.Request().Header.Get(echo.HeaderContentType), body)
	switch {
	case errors.Is(err, errUnsupportedType):
		return co, errStatus(http.StatusUnsupportedMediaType, err.Error()+": send JSON, XML or form parameters")
	case err != nil:
		return co, errStatus(http.StatusBadRequest, err.Error())
	}
	if co.OrderNumber != "" && !validOrderNumber(co.OrderNumber) {
		return co, errStatus(http.StatusBadRequest, "invalid order number")
	}
	return co, nil
}

// callout applies the loop guard and enqueues.
func (s *server) callout(c echo.Context, key string, co Callout) error {
	ctx := c.Request().Context()
	c.Set(ctxSubscription, key)
	trig := syncer.Trigger{
		Source:          syncer.SourceCallout,
		EventType:       co.EventType,
		OrderNumber:     co.OrderNumber,
		CreatedByID:     co.CreatedByID,
		OrderSource:     co.OrderSource,
		InitiatedSource: co.InitiatedSource,
		NotificationID:  truncate(c.Request().Header.Get(headerNotificationID), 128),
		Received:        time.Now().UTC(), // where the event-to-sync lag starts
	}
	if reason := s.loopReason(co); reason != "" {
		if err := s.deps.Outcomes.RecordSkipped(ctx, key, trig); err != nil {
			// The callout is dropped on purpose; a lost skip record is only
			// lost history, not worth Zuora re-delivering.
			c.Set(ctxCause, "record skipped: "+err.Error())
		}
		c.Set(ctxStatus, string(worker.SkippedStatus))
		return c.JSON(http.StatusOK, calloutResponse{Success: true, Status: string(worker.SkippedStatus), Subscription: key, Reason: reason})
	}
	return s.enqueue(c, key, trig)
}

func (s *server) enqueue(c echo.Context, key string, trig syncer.Trigger) error {
	// Zuora gives up after 25 s; a hung Redis must get a 503 well before.
	ctx, cancel := context.WithTimeout(c.Request().Context(), enqueueTimeout)
	defer cancel()
	status, taskID, err := s.deps.Enqueuer.Enqueue(ctx, key, trig, worker.QueueCallouts)
	if err != nil {
		c.Set(ctxCause, "enqueue: "+err.Error())
		return errStatus(http.StatusServiceUnavailable, "queue unavailable")
	}
	c.Set(ctxStatus, string(status))
	c.Set(ctxTaskID, taskID)
	code := http.StatusOK
	if trig.Source == syncer.SourceManual {
		code = http.StatusAccepted
	}
	return c.JSON(code, calloutResponse{Success: true, Status: string(status), Subscription: key, TaskID: taskID})
}

// loopReason says why the body shows the change was made by Limio itself, or
// "" when it doesn't. A body with only an order number is not judged here:
// the worker reads the order.
func (s *server) loopReason(co Callout) string {
	switch {
	case co.OrderSource != "" && s.loopSrc[normalizeValue(co.OrderSource)]:
		return "loop guard: Source__c " + co.OrderSource
	case co.InitiatedSource != "" && s.loopSrc[normalizeValue(co.InitiatedSource)]:
		return "loop guard: InitiatedSource__c " + co.InitiatedSource
	case co.CreatedByID != "" && s.loopUsr[normalizeValue(co.CreatedByID)]:
		return "loop guard: created by the integration user"
	}
	return ""
}

func normalizeValue(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// operatorID validates the :id of an operator route.
func operatorID(c echo.Context) (string, error) {
	id := c.Param("id")
	if err := validateID(id); err != nil {
		return "", errStatus(http.StatusBadRequest, err.Error())
	}
	c.Set(ctxSubscription, id)
	return id, nil
}

// manualSync is an operator's request: never loop-guarded.
func (s *server) manualSync(c echo.Context) error {
	id, err := operatorID(c)
	if err != nil {
		return err
	}
	return s.enqueue(c, id, syncer.Trigger{Source: syncer.SourceManual, Received: time.Now().UTC()})
}

// statusResponse is the latest record and the ones before it, newest first
// (the latest is not repeated in the history).
type statusResponse struct {
	Subscription string          `json:"subscription"`
	Latest       *worker.Record  `json:"latest"`
	History      []worker.Record `json:"history"`
}

func (s *server) status(c echo.Context) error {
	id, err := operatorID(c)
	if err != nil {
		return err
	}
	n := defaultHistory
	if q := c.QueryParam("n"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 0 || v > maxHistory {
			return errStatus(http.StatusBadRequest, fmt.Sprintf("n must be 0..%d", maxHistory))
		}
		n = v
	}
	ctx := c.Request().Context()
	latest, err := s.deps.Outcomes.Latest(ctx, id)
	if err != nil {
		c.Set(ctxCause, "latest outcome: "+err.Error())
		return errStatus(http.StatusServiceUnavailable, "outcome store unavailable")
	}
	var hist []worker.Record
	if n > 0 {
		// One more than asked: the head of the history is the latest itself.
		if hist, err = s.deps.Outcomes.History(ctx, id, n+1); err != nil {
			c.Set(ctxCause, "outcome history: "+err.Error())
			return errStatus(http.StatusServiceUnavailable, "outcome store unavailable")
		}
	}
	if latest == nil && len(hist) == 0 {
		return errStatus(http.StatusNotFound, "no sync recorded for "+id)
	}
	hist = worker.Older(latest, hist)
	hist = hist[:min(len(hist), n)]
	return c.JSON(http.StatusOK, statusResponse{Subscription: id, Latest: latest, History: hist})
}

func (s *server) plan(c echo.Context) error {
	id, err := operatorID(c)
	if err != nil {
		return err
	}
	if s.deps.Planner == nil {
		return errStatus(http.StatusNotImplemented, "dry run not available in this process")
	}
	out, err := s.deps.Planner.DryRun(c.Request().Context(), id)
	if err != nil {
		code := http.StatusBadGateway
		switch {
		case errors.Is(err, syncer.ErrNotFound):
			code = http.StatusNotFound
		case upstream.IsRetryable(err):
			code = http.StatusServiceUnavailable
		}
		return errStatus(code, "plan: "+err.Error())
	}
	return c.JSON(http.StatusOK, out)
}

func netipToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
