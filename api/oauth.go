package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/zsync/zsync/internal/clip"
)

// Tokens are HS256 JWTs rather than entries in Redis: every ingress process
// verifies them with the shared signing keys alone, a token costs no Redis
// round trip on the hot path, and nothing has to be cleaned up. The price,
// a token can't be revoked before it expires, is bounded by the short TTL;
// removing a client (or its signing key) refuses its tokens at once.
const (
	tokenIssuer   = "zsync"
	tokenAudience = "zsync-callouts"
	// TokenPath is the client-credentials token endpoint, where Limio's own is.
	TokenPath = "/oauth2/token"
)

var (
	errTokenExpired = errors.New("token expired")
	errTokenInvalid = errors.New("invalid token")
)

type signingKey struct {
	kid string
	key []byte
}

// tokenAuthority issues and verifies callout bearer tokens.
type tokenAuthority struct {
	keys    []signingKey // [0] signs, all verify
	clients map[string][]string
	static  []string
	ttl     time.Duration
	now     func() time.Time
	parser  *jwt.Parser
}

// newTokenAuthority returns nil when no bearer authentication is configured.
func newTokenAuthority(cfg Config, now func() time.Time) *tokenAuthority {
	if len(cfg.OAuthClients) == 0 && len(cfg.BearerTokens) == 0 {
		return nil
	}
	a := &tokenAuthority{clients: map[string][]string{}, ttl: cfg.OAuthTokenTTL, now: now}
	for _, k := range cfg.OAuthSigningKeys {
		a.keys = append(a.keys, signingKey{kid: keyID(k), key: []byte(k)})
	}
	for _, cl := range cfg.OAuthClients {
		for _, sec := range cl.Secrets {
			if sec != "" {
				a.clients[cl.ID] = append(a.clients[cl.ID], sec)
			}
		}
	}
	for _, t := range cfg.BearerTokens {
		if t != "" {
			a.static = append(a.static, t)
		}
	}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
	)
	return a
}

// keyID names a signing key in the token header without revealing it, so
// that a verifier picks the key at once.
func keyID(key string) string {
	sum := sha256.Sum256([]byte("zsync token key id\x00" + key))
	return hex.EncodeToString(sum[:8])
}

// clientValid checks client credentials, comparing every configured secret
// of the client in constant time (an unknown client costs the same).
func (a *tokenAuthority) clientValid(id, secret string) bool {
	secrets, known := a.clients[id]
	if !known {
		secretEqual(secret, "zsync: no such client")
		return false
	}
	ok := false
	for _, s := range secrets {
		if secretEqual(secret, s) {
			ok = true
		}
	}
	return ok
}

func (a *tokenAuthority) issue(clientID string) (string, error) {
	now := a.now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	claims := jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Subject:   clientID,
		Audience:  jwt.ClaimStrings{tokenAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(a.ttl)),
		ID:        hex.EncodeToString(jti[:]),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = a.keys[0].kid
	return t.SignedString(a.keys[0].key)
}

// verify accepts a static bearer token or a token this (or any) ingress
// issued to a client still configured.
func (a *tokenAuthority) verify(tok string) error {
	static := false
	for _, s := range a.static {
		if secretEqual(tok, s) {
			static = true
		}
	}
	if static {
		return nil
	}
	if len(a.keys) == 0 || strings.Count(tok, ".") != 2 {
		return errTokenInvalid
	}
	var claims jwt.RegisteredClaims
	_, err := a.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range a.keys {
			if k.kid == kid {
				return k.key, nil
			}
		}
		return nil, errors.New("unknown key id")
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return errTokenExpired
	case err != nil:
		return errTokenInvalid
	}
	if _, ok := a.clients[claims.Subject]; !ok {
		return errTokenInvalid
	}
	return nil
}

// tokenResponse is Limio's token answer (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// oauthError is the RFC 6749 §5.2 error answer.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// token serves the client-credentials grant as Zuora's OAuth 2.0 provider
// calls it: the client id and secret in the form body, and, when that
// fails, again in an Authorization: Basic header. Extra parameters (scope,
// the provider's "Additional Parameters") are ignored.
func (s *server) token(c echo.Context) error {
	r := c.Request()
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
	if !ipAllowed(s.allow, c.RealIP()) {
		s.refused(c, reasonIPNotAllowed)
		return errStatus(http.StatusForbidden, "source address not allowed")
	}
	fail := func(code int, e, desc, reason string) error {
		s.refused(c, reason)
		c.Set(ctxError, e+": "+desc)
		return c.JSON(code, oauthError{Error: e, Description: desc})
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); mt != "application/x-www-form-urlencoded" {
		return fail(http.StatusBadRequest, "invalid_request", "send application/x-www-form-urlencoded with grant_type=client_credentials", reasonTokenRequest)
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fail(http.StatusBadRequest, "invalid_request", "malformed form body", reasonTokenRequest)
	}
	id, secret, header := r.BasicAuth()
	if !header {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	switch gt := form.Get("grant_type"); {
	case gt == "":
		return fail(http.StatusBadRequest, "invalid_request", "grant_type is missing: send grant_type=client_credentials", reasonTokenRequest)
	case gt != "client_credentials":
		return fail(http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q: only client_credentials is offered", clip.To(gt, 32)), reasonTokenRequest)
	}
	ok := id != "" && s.tokens.clientValid(id, secret)
	if !ok && header {
		// RFC 6749 §2.3.1 form-encodes id and secret before base64;
		// Zuora's documented example doesn't. Take either.
		uid, err1 := url.QueryUnescape(id)
		usec, err2 := url.QueryUnescape(secret)
		if err1 == nil && err2 == nil && (uid != id || usec != secret) {
			id, ok = uid, s.tokens.clientValid(uid, usec)
		}
	}
	if !ok {
		if header {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, calloutRealm)
		}
		return fail(http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret", reasonTokenClient)
	}
	tok, err := s.tokens.issue(id)
	if err != nil {
		c.Set(ctxCause, "sign token: "+err.Error())
		return errStatus(http.StatusInternalServerError, "internal error")
	}
	return c.JSON(http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.cfg.OAuthTokenTTL / time.Second)})
}
