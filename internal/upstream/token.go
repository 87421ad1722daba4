package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// refreshEarly is how long before expiry a cached token is replaced, so a
// token never expires in flight (tap-zuora uses the same margin).
const refreshEarly = 60 * time.Second

// TokenSource fetches and caches an OAuth2 client-credentials token.
//
// It is hand-written rather than golang.org/x/oauth2/clientcredentials because
// that package fetches tokens with a context fixed at construction, so a
// caller's cancellation or deadline would not reach the token request, and it
// cannot drop a token the server has just refused with a 401.
type TokenSource struct {
	API          string
	URL          string // full token endpoint URL
	ClientID     string
	ClientSecret string
	HTTP         *http.Client
	Now          func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// Token returns a valid access token, fetching one when none is cached or the
// cached one is within a minute of expiry. Concurrent callers share one fetch.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && s.now().Before(s.expires.Add(-refreshEarly)) {
		return s.token, nil
	}
	tok, ttl, err := s.fetch(ctx)
	if err != nil {
		return "", err
	}
	s.token, s.expires = tok, s.now().Add(ttl)
	return tok, nil
}

// Invalidate drops the cached token if it is still tok, so the next call to
// Token fetches a new one (after the API refused tok with a 401).
func (s *TokenSource) Invalidate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == tok {
		s.token = ""
	}
}

func (s *TokenSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *TokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	const op = "POST token"
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {s.ClientID},
		"client_secret": {s.ClientSecret},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, &Error{API: s.API, Op: op, Kind: Permanent, Message: "bad token URL", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return "", 0, transportError(ctx, s.API, op, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		kind := KindForStatus(resp.StatusCode)
		if kind == NotFound { // a missing token endpoint is a configuration error
			kind = Permanent
		}
		return "", 0, &Error{
			API: s.API, Op: op, StatusCode: resp.StatusCode, Kind: kind,
			Message:    "token request refused (check client id and secret)",
			RetryAfter: ParseLimits(resp.StatusCode, resp.Header, s.now()).Wait,
		}
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", 0, &Error{API: s.API, Op: op, StatusCode: resp.StatusCode, Kind: Retryable,
			Message: "token response without access_token", Err: err}
	}
	ttl := time.Duration(tr.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Hour
	}
	return tr.AccessToken, ttl, nil
}

// String keeps the secret out of any %v of the source.
func (s *TokenSource) String() string {
	return fmt.Sprintf("TokenSource{api:%s url:%s client_id:%s}", s.API, s.URL, s.ClientID)
}
