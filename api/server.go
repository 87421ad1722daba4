// Package api is zsync's HTTP ingress: Zuora callout endpoints, the operator
// API, asynqmon at /monitor, /metrics, /healthz and /readyz. It is thin: it
// authenticates, validates, applies the ingress loop guard, hands the
// callout to the worker's enqueuer and answers within milliseconds. It never
// talks to Zuora or Limio itself.
package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// Enqueuer stores a sync task for key. An error means nothing was stored:
// the ingress answers 503 so Zuora delivers again.
type Enqueuer interface {
	Enqueue(ctx context.Context, key string, trig syncer.Trigger, queue string) (worker.EnqueueStatus, string, error)
	// EnqueueAccount stores the fan-out of an account to its subscriptions.
	EnqueueAccount(ctx context.Context, account string, trig syncer.Trigger, queue string) (worker.EnqueueStatus, string, error)
}

// Outcomes reads recorded sync outcomes and records ingress skips.
type Outcomes interface {
	// Latest returns nil, nil when nothing was recorded for id.
	Latest(ctx context.Context, id string) (*worker.Record, error)
	History(ctx context.Context, id string, n int) ([]worker.Record, error)
	RecordSkipped(ctx context.Context, key string, trig syncer.Trigger) error
}

// Planner computes what a sync would change, without writing.
type Planner interface {
	DryRun(ctx context.Context, key string) (syncer.Outcome, error)
}

// Deps are what the ingress talks to. Enqueuer and Outcomes are required.
type Deps struct {
	Enqueuer Enqueuer
	Outcomes Outcomes
	Planner  Planner                         // optional: /plan answers 501 without it
	Ready    func(ctx context.Context) error // /readyz check "redis"; nil: none
	Checks   []Check                         // more /readyz checks (probes.go)
	Monitor  http.Handler                    // optional asynqmon, served at /monitor with its RootPath "/monitor"
	Metrics  http.Handler                    // optional Prometheus handler at /metrics
	Resyncs  Resyncs                         // optional: /v1/resyncs answers 501 without it
	Checker  Checker                         // optional: /v1/check answers 501 without it
	Now      func() time.Time                // optional clock (token expiry, Trigger.Received); default time.Now

	HTTPMetrics HTTPMetrics          // optional: requests by route and status, refused callouts (httpmetrics.go)
	Tracer      trace.TracerProvider // optional: a span per request (tracing.go)
}

// MonitorPath is where asynqmon is mounted; set asynqmon's RootPath to it.
const MonitorPath = "/monitor"

const (
	readyTimeout   = 2 * time.Second
	enqueueTimeout = 10 * time.Second
	defaultHistory = 20
	maxHistory     = 100
)

type server struct {
	cfg    Config
	deps   Deps
	log    *zap.Logger
	access accessLoggers // the request lines (accesslog.go)
	basic  basicDigest   // the callout credentials', computed once
	hmac   *hmacVerifier
	tokens *tokenAuthority // nil: no bearer authentication
	now    func() time.Time
	allow  []netip.Prefix
	loop   syncer.Config // only its loop-guard fields: the rule is the syncer's
	csrf   *http.CrossOriginProtection
}

// New validates cfg and returns the ingress router, ready to serve.
func New(cfg Config, deps Deps, logger *zap.Logger) (*echo.Echo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	if deps.Enqueuer == nil || deps.Outcomes == nil {
		return nil, errors.New("api: Deps.Enqueuer and Deps.Outcomes are required")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	if cfg.AuthDisabled {
		logger.Warn("callout authentication is disabled: anyone who can reach this port can trigger syncs (zsync dev only)",
			zap.Bool("operator_endpoints_open", cfg.operatorOpen()))
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	allow, _ := parsePrefixes(cfg.AllowIPs) // validated above
	proxies, _ := parsePrefixes(cfg.TrustedProxies)
	s := &server{
		cfg:    cfg,
		deps:   deps,
		log:    logger.Named("api"),
		access: newAccessLoggers(logger.Named("api"), now),
		hmac:   newHMACVerifier(cfg),
		tokens: newTokenAuthority(cfg, now),
		now:    now,
		allow:  allow,
		loop: syncer.Config{LoopSources: cfg.LoopSources, IntegrationUserIDs: cfg.IntegrationUserIDs,
			IntegrationUserNames: cfg.IntegrationUserNames},
		basic: basicDigestOf(cfg.CalloutUsername, cfg.CalloutPassword),
		csrf:  http.NewCrossOriginProtection(),
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(proxies)

	routes := map[string]bool{} // filled once every route is registered, below
	if deps.HTTPMetrics != nil {
		deps.HTTPMetrics.DeclareRefusals(RefusalReasons)
		e.Use(s.httpMetrics(routes))
	}
	if deps.Tracer != nil {
		e.Use(s.traceRequests(deps.Tracer, routes))
	}
	e.Use(
		requestIDs, // requestid.go: a client's id only when it is a sane one
		s.accessLog,
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				s.log.Error("panic", zap.String("request_id", requestID(c)), zap.Error(err), zap.ByteString("stack", stack))
				return errStatus(http.StatusInternalServerError, "internal error")
			},
		}),
		methodNotAllowed, // options.go: OPTIONS included, no CORS
		s.bodyLimit,
	)

	s.mountProbes(e) // /healthz, /readyz open; /readyz/detail for operators

	// Callouts. The Limio path takes the id from the path; a wildcard (not
	// :id) so that ids with extra segments get a 400, not a 404.
	e.POST(calloutByPathPrefix+"*", s.calloutByPath, s.calloutAuth)
	e.POST(calloutByBodyPath, s.calloutByBody, s.calloutAuth)
	e.POST(LimioEventsPath, s.limioEvent, s.calloutAuth)
	if s.tokens != nil && len(cfg.OAuthClients) > 0 {
		e.POST(TokenPath, s.token) // authenticated by the client credentials it checks
	}

	// Operator routes (the probes above are the only open ones, and reveal
	// nothing but a status). Route middleware rather than a Group: a
	// Group("") would answer 401 for every unknown path.
	auth := s.operatorAuth
	e.POST("/v1/subscriptions/:id/sync", s.manualSync, auth)
	e.GET("/v1/subscriptions/:id/sync", s.status, auth)
	e.GET("/v1/subscriptions/:id/plan", s.plan, auth)
	e.GET("/v1/accounts/:id/sync", s.accountStatus, auth)
	e.POST(resyncsPath, s.startResync, auth)
	e.GET("/v1/resyncs/:id", s.resyncProgress, auth)
	s.routeCheck(e, auth)
	if deps.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(deps.Metrics), auth)
	}
	if deps.Monitor != nil {
		// asynqmon's router matches the full path: don't strip the prefix.
		// Both routes, or /monitor without a slash is a 404.
		h := echo.WrapHandler(deps.Monitor)
		e.Any(MonitorPath, h, auth)
		e.Any(MonitorPath+"/*", h, auth)
	}
	for _, r := range e.Routes() {
		routes[r.Path] = true
	}
	return e, nil
}

// ipExtractor believes X-Forwarded-For only from the configured proxies.
func ipExtractor(proxies []netip.Prefix) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		opts = append(opts, echo.TrustIPRange(netipToIPNet(p)))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// apiError is every error body: Zuora's "confirm success by parsing
// response content" reads success.
type apiError struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
}

func errStatus(code int, msg string) *echo.HTTPError {
	return echo.NewHTTPError(code, msg)
}

// handleError renders every error, echo's own 404/405 included, as JSON.
func (s *server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(code)
		}
	}
	c.Set(ctxError, msg)
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.JSON(code, apiError{Success: false, Error: msg})
}

// Context keys the handlers set for the access log.
const (
	ctxSubscription = "zsync.subscription"
	ctxNotification = "zsync.notification_id"
	ctxStatus       = "zsync.status"
	ctxTaskID       = "zsync.task_id"
	ctxError        = "zsync.error"
	ctxCause        = "zsync.cause" // the underlying error behind a 5xx; logged once, here
	ctxBody         = "zsync.body"
)

// bodyLimit refuses bodies over MaxBodyBytes: early when Content-Length says
// so, otherwise while reading (readBody maps that to 413). POST /v1/resyncs
// streams its body and has a limit of its own (resync_body.go).
func (s *server) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		resync := isResyncStart(c)
		limit := s.cfg.MaxBodyBytes
		if resync {
			limit = s.cfg.resyncMaxBytes()
		}
		if r.ContentLength > limit {
			if resync {
				return s.cfg.resyncTooLarge()
			}
			return errStatus(http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", limit))
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
		}
		return next(c)
	}
}
