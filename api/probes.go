package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// Probes: /healthz (the process serves HTTP) and /readyz (every readiness
// check passes) are open, because a Kubernetes or compose probe can't send
// credentials, and answer a status and nothing else. What failed, and why,
// is at /readyz/detail behind the operator credentials, and in the access
// log line of the failed probe.
const (
	pathHealth      = "/healthz"
	pathReady       = "/readyz"
	pathReadyDetail = "/readyz/detail"
)

// Check is one readiness condition of a process: Redis answers, the worker's
// asynq server runs. Run returns nil when it holds.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

type probeStatus struct {
	Status string `json:"status"`
}

type readyDetail struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// runChecks runs every check at once under readyTimeout.
func runChecks(ctx context.Context, checks []Check) (ok bool, results map[string]string, failed []string) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	results = make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok = true
	for _, c := range checks {
		wg.Go(func() {
			err := c.Run(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ok = false
				results[c.Name] = "failed: " + err.Error()
				failed = append(failed, c.Name+": "+err.Error())
				return
			}
			results[c.Name] = "ok"
		})
	}
	wg.Wait()
	sort.Strings(failed)
	return ok, results, failed
}

func readyWord(ok bool) (string, int) {
	if ok {
		return "ready", http.StatusOK
	}
	return "not ready", http.StatusServiceUnavailable
}

// checks are the ingress's readiness checks: Deps.Ready as "redis", then
// Deps.Checks.
func (s *server) checks() []Check {
	var cs []Check
	if s.deps.Ready != nil {
		cs = append(cs, Check{Name: "redis", Run: s.deps.Ready})
	}
	return append(cs, s.deps.Checks...)
}

func (s *server) mountProbes(e *echo.Echo) {
	e.GET(pathHealth, func(c echo.Context) error {
		return c.JSON(http.StatusOK, probeStatus{Status: "ok"})
	})
	e.GET(pathReady, func(c echo.Context) error {
		ok, _, failed := runChecks(c.Request().Context(), s.checks())
		word, code := readyWord(ok)
		if !ok {
			c.Set(ctxCause, "ready: "+strings.Join(failed, ", "))
		}
		return c.JSON(code, probeStatus{Status: word})
	})
	e.GET(pathReadyDetail, func(c echo.Context) error {
		ok, results, _ := runChecks(c.Request().Context(), s.checks())
		word, code := readyWord(ok)
		return c.JSON(code, readyDetail{Status: word, Checks: results})
	}, s.operatorAuth)
}

// probeHandler serves the probes of a process without an ingress (zsync
// work) on its own listener: /healthz and /readyz open, /readyz/detail to
// the operator credentials of cfg. It answers false for any other path, so
// it can sit in front of another handler.
func probeHandler(cfg Config, checks []Check) func(w http.ResponseWriter, r *http.Request) bool {
	cfg = cfg.withDefaults()
	return func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case pathHealth, pathReady, pathReadyDetail:
		default:
			return false
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return true
		}
		var body any
		code := http.StatusOK
		switch r.URL.Path {
		case pathHealth:
			body = probeStatus{Status: "ok"}
		case pathReady:
			ok, _, _ := runChecks(r.Context(), checks)
			word, c := readyWord(ok)
			body, code = probeStatus{Status: word}, c
		case pathReadyDetail:
			if ok, _ := operatorAllowed(cfg, r); !ok && !cfg.operatorOpen() {
				w.Header().Set(echo.HeaderWWWAuthenticate, operatorChallenge(cfg))
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return true
			}
			ok, results, _ := runChecks(r.Context(), checks)
			word, c := readyWord(ok)
			body, code = readyDetail{Status: word, Checks: results}, c
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
		return true
	}
}

// WorkerHandler is the listener of zsync work: the probes, and /metrics
// (metrics may be nil) behind the operator credentials.
func WorkerHandler(cfg Config, metrics http.Handler, checks []Check) http.Handler {
	probes := probeHandler(cfg, checks)
	rest := http.NotFoundHandler()
	if metrics != nil {
		rest = MetricsOnly(cfg, metrics)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if probes(w, r) {
			return
		}
		rest.ServeHTTP(w, r)
	})
}
