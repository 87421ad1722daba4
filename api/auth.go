package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

const (
	calloutRealm  = `Basic realm="zsync"`
	operatorRealm = `Basic realm="zsync operator"`
)

// secretEqual compares in constant time. Both sides are hashed first so that
// neither the length of the secret nor a common prefix leaks through timing.
func secretEqual(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// basicDigest is what Basic credentials are compared by: the SHA-256 of the
// username's length, the username and the password, so that one hash
// compares both and the pair is read unambiguously. As with secretEqual,
// neither a length nor a common prefix leaks through timing.
type basicDigest [sha256.Size]byte

func basicDigestOf(user, pass string) basicDigest {
	var buf [128]byte // on the stack for the usual lengths
	b := binary.BigEndian.AppendUint64(buf[:0], uint64(len(user)))
	b = append(append(b, user...), pass...)
	return sha256.Sum256(b)
}

// basicMatches reports whether the request carries exactly the Basic
// credentials of want.
func basicMatches(r *http.Request, want *basicDigest) (present, ok bool) {
	u, p, present := r.BasicAuth()
	if !present {
		return false, false
	}
	got := basicDigestOf(u, p)
	return true, subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// ipAllowed reports whether the client IP is in the allow-list (an empty
// list allows everyone).
func ipAllowed(allow []netip.Prefix, ip string) bool {
	if len(allow) == 0 {
		return true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// operatorAuth guards the operator API, /monitor and /metrics: a bearer
// token (scripts) or Basic credentials (browsers). Browsers send Basic
// credentials on their own, so those requests (and all requests when the
// operator endpoints are open) get a cross-site check on unsafe methods; a bearer token is never
// sent by a browser on its own, so it needs none.
func (s *server) operatorAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		browser := true
		if !s.cfg.operatorOpen() {
			var ok bool
			if ok, browser = operatorAllowed(s.cfg, r); !ok {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, operatorChallenge(s.cfg))
				return errStatus(http.StatusUnauthorized, "unauthorized")
			}
		}
		if browser {
			if err := s.csrf.Check(r); err != nil {
				return errStatus(http.StatusForbidden, "cross-site request refused")
			}
		}
		return next(c)
	}
}

// operatorAllowed checks the operator credentials of r: the bearer token, or
// Basic username and password. browser is false for a bearer token, which a
// browser never sends on its own.
func operatorAllowed(cfg Config, r *http.Request) (ok, browser bool) {
	if tok, found := bearerToken(r); found {
		return cfg.OperatorToken != "" && secretEqual(tok, cfg.OperatorToken), false
	}
	if cfg.OperatorUsername != "" {
		want := basicDigestOf(cfg.OperatorUsername, cfg.OperatorPassword)
		_, ok = basicMatches(r, &want)
	}
	return ok, true
}

func operatorChallenge(cfg Config) string {
	if cfg.OperatorUsername != "" {
		return operatorRealm
	}
	return `Bearer realm="zsync operator"`
}

// MetricsOnly serves h at GET /metrics, to the operator credentials and
// nothing else: the listener of a process that has no ingress (zsync work).
func MetricsOnly(cfg Config, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if ok, _ := operatorAllowed(cfg, r); !ok && !cfg.operatorOpen() {
			w.Header().Set(echo.HeaderWWWAuthenticate, operatorChallenge(cfg))
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get(echo.HeaderAuthorization)
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
