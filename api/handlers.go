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

	"github.com/zsync/zsync/internal/clip"
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
	Subscription string `json:"subscription,omitempty"`
	Account      string `json:"account,omitempty"` // an account-level callout's fan-out
	TaskID       string `json:"task_id,omitempty"`
	Reason       string `json:"reason,omitempty"`
	// ID is Limio's field (its sync answer's sub-…), on Limio's paths when
	// zsync knows it. Limio's owner is never known to the ingress.
	ID string `json:"id,omitempty"`
}

// calloutAuth authenticates a callout, in order: IP allow-list (403), the
// credential (401), then reads the body (413) and checks the HMAC over the
// signed data (401). The configured credentials (Basic, bearer tokens) are
// alternatives; HMAC, when configured, must pass as well.
func (s *server) calloutAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if nid := r.Header.Get(headerNotificationID); nid != "" {
			c.Set(ctxNotification, clip.To(nid, 128))
		}
		if !ipAllowed(s.allow, c.RealIP()) {
			s.refused(c, reasonIPNotAllowed)
			return errStatus(http.StatusForbidden, "source address not allowed")
		}
		if err := s.checkCredential(c); err != nil {
			return err
		}
		body, err := readBody(r)
		if err != nil {
			if he, ok := err.(*echo.HTTPError); ok && he.Code == http.StatusRequestEntityTooLarge {
				s.refused(c, reasonBodyTooLarge)
			}
			return err
		}
		if !s.cfg.AuthDisabled && s.hmac != nil && !s.hmac.verify(r, body) {
			s.refused(c, reasonBadSignature)
			return errStatus(http.StatusUnauthorized, "bad or missing signature")
		}
		c.Set(ctxBody, body)
		return next(c)
	}
}

// checkCredential checks the Authorization header against the configured
// credentials. Without one it answers 401 with a challenge for each scheme
// configured: Zuora's Basic option sends credentials only after the Basic
// challenge (unless preemptive), so that one is not counted as a refusal.
func (s *server) checkCredential(c echo.Context) error {
	basic := s.cfg.CalloutUsername != ""
	if s.cfg.AuthDisabled || (!basic && s.tokens == nil) {
		return nil
	}
	r := c.Request()
	h := c.Response().Header()
	scheme, _, _ := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	switch {
	case basic && strings.EqualFold(scheme, "Basic"):
		if _, ok := basicMatches(r, &s.basic); ok {
			return nil
		}
		s.refused(c, reasonBadBasic)
		h.Set(echo.HeaderWWWAuthenticate, calloutRealm)
		return errStatus(http.StatusUnauthorized, "unauthorized")
	case s.tokens != nil && strings.EqualFold(scheme, "Bearer"):
		tok, _ := bearerToken(r)
		err := s.tokens.verify(tok)
		if err == nil {
			return nil
		}
		// RFC 6750 §3: the client learns to fetch a new token.
		reason, desc := reasonBadToken, "invalid token"
		if errors.Is(err, errTokenExpired) {
			reason, desc = reasonExpiredToken, "token expired"
		}
		s.refused(c, reason)
		h.Set(echo.HeaderWWWAuthenticate, fmt.Sprintf(`Bearer realm="zsync", error="invalid_token", error_description=%q`, desc))
		return errStatus(http.StatusUnauthorized, desc)
	}
	if basic {
		h.Add(echo.HeaderWWWAuthenticate, calloutRealm)
	}
	if s.tokens != nil {
		h.Add(echo.HeaderWWWAuthenticate, `Bearer realm="zsync"`)
	}
	return errStatus(http.StatusUnauthorized, "unauthorized")
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

// LimioEventsPath is Limio's own Zuora webhook (sent by Zuora Workflows),
// served with its body {"subscriptionID":…,"type":…,"data":{…}}.
const LimioEventsPath = "/api/events/zuora"

// calloutByPath is Limio's own endpoint: the key is in the path, the body
// (optional) only adds the trigger details.
func (s *server) calloutByPath(c echo.Context) error {
	id := c.Param("*")
	if err := validateID(id); err != nil {
		s.refused(c, reasonInvalidID)
		return errStatus(http.StatusBadRequest, err.Error())
	}
	co, err := s.parseBody(c)
	if err != nil {
		return err
	}
	if s.hmacOnly() && co.Subscription != id && co.SubscriptionID != id {
		// The signature covers the body, not the path: without another
		// credential, a signed body replayed to another path (or an empty
		// body, signed the same for every callout) must not sync another
		// subscription.
		s.refused(c, reasonUnsignedPath)
		return errStatus(http.StatusBadRequest, "with HMAC-only authentication the signed body must name the subscription in the path")
	}
	return s.callout(c, id, co, true)
}

// hmacOnly reports whether callouts are authenticated by the body's HMAC
// alone (no Basic credentials, no bearer tokens).
func (s *server) hmacOnly() bool {
	return !s.cfg.AuthDisabled && s.hmac != nil && s.cfg.CalloutUsername == "" && s.tokens == nil
}

// calloutByBody takes the subscription number from the body, or, when the
// body names only an account (a contact or account edit), fans out to every
// subscription of that account.
func (s *server) calloutByBody(c echo.Context) error {
	co, err := s.parseBody(c)
	if err != nil {
		return err
	}
	if co.Subscription == "" && (co.AccountNumber != "" || co.AccountID != "") {
		return s.accountCallout(c, co)
	}
	key, err := s.bodyKey(c, co, false)
	if err != nil {
		return err
	}
	return s.callout(c, key, co, false)
}

// limioEvent is Limio's webhook: subscriptionID is "the Zuora subscription
// ID or number"; only a number (or a Limio id or reference) can be a key.
func (s *server) limioEvent(c echo.Context) error {
	co, err := s.parseBody(c)
	if err != nil {
		return err
	}
	key, err := s.bodyKey(c, co, true)
	if err != nil {
		return err
	}
	return s.callout(c, key, co, true)
}

// lookedFor is what the 400 for a body without a key names.
const lookedFor = "looked for subscriptionNumber, subscriptionName, SubscriptionName or subscription " +
	"(and subscriptionID on " + LimioEventsPath + "), and for AccountNumber, AccountAccountNumber or AccountId"

// bodyKey picks the subscription key from a parsed body. With limio (Limio's
// webhook) subscriptionID comes first, as Limio documents it.
func (s *server) bodyKey(c echo.Context, co Callout, limio bool) (string, error) {
	if limio && co.SubscriptionID != "" && worker.ValidID(co.SubscriptionID) {
		return co.SubscriptionID, nil
	}
	switch {
	case co.Subscription != "":
		if err := validateID(co.Subscription); err != nil {
			s.refused(c, reasonInvalidID)
			return "", errStatus(http.StatusBadRequest, err.Error())
		}
		return co.Subscription, nil
	case limio && co.SubscriptionID != "":
		s.refused(c, reasonInternalID)
		return "", errStatus(http.StatusBadRequest, fmt.Sprintf("subscriptionID %q is not a subscription number: send the number ({{DataSource.Subscription.Name}} or Subscription.Name)", clip.To(co.SubscriptionID, 64)))
	case co.AccountNumber != "" || co.AccountID != "":
		// Only Limio's webhook gets here: /v1/callouts/zuora fans an
		// account-only body out to the account's subscriptions.
		s.refused(c, reasonAccountOnly)
		return "", errStatus(http.StatusBadRequest, "the body names an account but no subscription: send account-level events to /v1/callouts/zuora; "+lookedFor)
	}
	s.refused(c, reasonNoSubscription)
	return "", errStatus(http.StatusBadRequest, "no subscription in body: "+lookedFor)
}

func (s *server) parseBody(c echo.Context) (Callout, error) {
	body, _ := c.Get(ctxBody).([]byte)
	co, err := parseCallout(c.Request().Header.Get(echo.HeaderContentType), body)
	switch {
	case errors.Is(err, errUnsupportedType):
		s.refused(c, reasonMediaType)
		return co, errStatus(http.StatusUnsupportedMediaType, err.Error()+": send JSON, XML or form parameters")
	case err != nil:
		s.refused(c, reasonMalformed)
		return co, errStatus(http.StatusBadRequest, err.Error())
	}
	if co.OrderNumber != "" && !validOrderNumber(co.OrderNumber) {
		s.refused(c, reasonInvalidOrder)
		return co, errStatus(http.StatusBadRequest, "invalid order number")
	}
	return co, nil
}

// callout applies the loop guard and enqueues. limio marks Limio's paths,
// whose answer carries Limio's own fields.
func (s *server) callout(c echo.Context, key string, co Callout, limio bool) error {
	ctx := c.Request().Context()
	c.Set(ctxSubscription, key)
	trig := syncer.Trigger{
		Source:          syncer.SourceCallout,
		EventType:       co.EventType,
		OrderNumber:     co.OrderNumber,
		CreatedByID:     co.CreatedByID,
		OrderSource:     co.OrderSource,
		InitiatedSource: co.InitiatedSource,
		NotificationID:  clip.To(c.Request().Header.Get(headerNotificationID), 128),
		Received:        s.received(),
	}
	answer := calloutResponse{Success: true, Subscription: key}
	if limio {
		answer.ID = knownLimioID(key)
	}
	if reason := s.loopReason(trig); reason != "" {
		if s.deps.HTTPMetrics != nil {
			s.deps.HTTPMetrics.CalloutSkipped()
		}
		if err := s.deps.Outcomes.RecordSkipped(ctx, key, trig); err != nil {
			// The callout is dropped on purpose; a lost skip record is only
			// lost history, not worth Zuora re-delivering.
			c.Set(ctxCause, "record skipped: "+err.Error())
		}
		c.Set(ctxStatus, string(worker.SkippedStatus))
		answer.Status, answer.Reason = string(worker.SkippedStatus), reason
		return writeAnswer(c, http.StatusOK, answer)
	}
	return s.enqueue(c, key, trig, answer)
}

// accountCallout stores the fan-out of an account-level callout. The answer
// comes once the fan-out task is in Redis, not after each subscription is
// enqueued: an account with thousands of subscriptions answers as fast as any.
// There is no order to judge, so no loop guard.
func (s *server) accountCallout(c echo.Context, co Callout) error {
	account := co.AccountNumber // a number before an id
	if account == "" {
		account = co.AccountID
	}
	if !worker.ValidAccount(account) {
		s.refused(c, reasonInvalidID)
		return errStatus(http.StatusBadRequest, "invalid account: want a Zuora account number or id")
	}
	c.Set(ctxSubscription, worker.AccountKey(account))
	trig := syncer.Trigger{
		Source:         syncer.SourceCallout,
		EventType:      co.EventType,
		NotificationID: clip.To(c.Request().Header.Get(headerNotificationID), 128),
		Received:       s.received(),
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), enqueueTimeout)
	defer cancel()
	status, taskID, err := s.deps.Enqueuer.EnqueueAccount(ctx, account, trig, worker.QueueCallouts)
	if err != nil {
		c.Set(ctxCause, "enqueue account: "+err.Error())
		return errStatus(http.StatusServiceUnavailable, "queue unavailable")
	}
	c.Set(ctxStatus, string(status))
	c.Set(ctxTaskID, taskID)
	return writeAnswer(c, http.StatusOK, calloutResponse{Success: true, Status: string(status), Account: account, TaskID: taskID})
}

// knownLimioID is the Limio subscription id zsync knows without any I/O:
// the key itself when it is one. Looking a Zuora number up (Redis, Limio)
// would slow every callout for a field few Workflows read.
func knownLimioID(key string) string {
	if strings.HasPrefix(key, "sub-") {
		return key
	}
	return ""
}

func (s *server) enqueue(c echo.Context, key string, trig syncer.Trigger, answer calloutResponse) error {
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
	answer.Success, answer.Subscription, answer.Status, answer.TaskID = true, key, string(status), taskID
	return writeAnswer(c, code, answer)
}

// loopReason says why the callout's body shows the change was made by Limio
// itself, or "" when it doesn't; the rule is the syncer's (CalloutLoop). A
// body with only an order number is not judged here: the worker reads the
// order.
func (s *server) loopReason(trig syncer.Trigger) string {
	switch syncer.CalloutLoop(s.loop, trig) {
	case syncer.LoopOrderSource:
		return "loop guard: Source__c " + trig.OrderSource
	case syncer.LoopInitiatedSource:
		return "loop guard: InitiatedSource__c " + trig.InitiatedSource
	case syncer.LoopCreatedBy:
		return "loop guard: created by the integration user"
	}
	return ""
}

// received stamps a trigger with when the ingress took its request, on the
// ingress's clock: the event-to-sync lag starts there.
func (s *server) received() time.Time { return s.now().UTC() }

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
	return s.enqueue(c, id, syncer.Trigger{Source: syncer.SourceManual, Received: s.received()}, calloutResponse{})
}

// statusResponse is the latest record and the ones before it, newest first
// (the latest is not repeated in the history).
type statusResponse struct {
	Subscription string          `json:"subscription,omitempty"`
	Account      string          `json:"account,omitempty"`
	Latest       *worker.Record  `json:"latest"`
	History      []worker.Record `json:"history"`
}

func (s *server) status(c echo.Context) error {
	id, err := operatorID(c)
	if err != nil {
		return err
	}
	return s.outcomes(c, id, statusResponse{Subscription: id})
}

// accountStatus is the record of an account's fan-outs: fanned_out with how
// many subscriptions, not_found when Zuora has no such account, or failed.
func (s *server) accountStatus(c echo.Context) error {
	account := c.Param("id")
	if !worker.ValidAccount(account) {
		return errStatus(http.StatusBadRequest, "invalid account: want a Zuora account number or id")
	}
	c.Set(ctxSubscription, worker.AccountKey(account))
	return s.outcomes(c, worker.AccountKey(account), statusResponse{Account: account})
}

// outcomes answers the latest record and the history kept under id.
func (s *server) outcomes(c echo.Context, id string, resp statusResponse) error {
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
	resp.Latest, resp.History = latest, hist
	return c.JSON(http.StatusOK, resp)
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
		case syncer.ErrorResult(err) == syncer.NotFound:
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
