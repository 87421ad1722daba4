// Package zuora is zsync's Zuora REST client: the few reads a sync needs
// (subscription, account, billing preview, order, a ZOQL query for the sweep),
// built on the shared upstream plumbing, with Zuora's errors classified once
// (errors.go) and a tenant-wide limiter shared by every process (limit.go).
package zuora

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zsync/zsync/internal/field"
	"github.com/zsync/zsync/internal/upstream"
)

// DefaultVersion is the Zuora-Version every request pins, so a tenant-side
// default change can't alter the shapes zsync decodes.
const DefaultVersion = "2025-08-12"

// DefaultTimeout bounds one HTTP exchange.
const DefaultTimeout = 20 * time.Second

// maxKeyLen bounds ids and numbers before they reach a URL.
const maxKeyLen = 100

// Config is what a Client needs to reach one tenant.
type Config struct {
	BaseURL      string   // e.g. https://rest.zuora.com, no trailing slash needed; wins over Environment
	Environment  string   // a name in Environments (us-production, eu-sandbox…) when BaseURL is empty
	EntityIDs    []string // Zuora-Entity-Ids on every call (multi-entity tenants)
	ClientID     string
	ClientSecret string
	Version      string        // Zuora-Version header; DefaultVersion when empty
	Timeout      time.Duration // per HTTP exchange; DefaultTimeout when zero
}

// Option configures a Client.
type Option func(*options)

type options struct {
	http     *http.Client
	limiter  upstream.Limiter
	observer func(op string, status int, d time.Duration)
	clock    func() time.Time
}

// WithHTTPClient sets the HTTP client. When its Timeout is zero a copy with
// Config.Timeout is used.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.http = c } }

// WithLimiter gates every request. A limiter that observes responses (as
// TenantLimiter does) is told every response's limit headers, so a 429
// (Retry-After, or RateLimit-Reset without it) pauses every process sharing
// it; a limiter that can only Pause is told a 429's wait.
func WithLimiter(l upstream.Limiter) Option { return func(o *options) { o.limiter = l } }

// WithObserver is told about every response (metrics): op has no ids.
func WithObserver(fn func(op string, status int, d time.Duration)) Option {
	return func(o *options) { o.observer = fn }
}

// WithClock replaces the clock used for token expiry and latencies (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// pauser is what a limiter offers to make every worker back off after a 429.
type pauser interface {
	Pause(ctx context.Context, d time.Duration) error
}

// Client reads from one Zuora tenant. It is safe for concurrent use.
type Client struct {
	up       *upstream.Client
	version  string
	entities string
}

// DefaultConfig is every default of the client (config/ takes its defaults
// from here).
func DefaultConfig() Config { return Config{Version: DefaultVersion, Timeout: DefaultTimeout} }

// WithDefaults fills zero values from DefaultConfig (a negative Timeout too).
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	c.Version = cmp.Or(c.Version, d.Version)
	c.Timeout = cmp.Or(max(c.Timeout, 0), d.Timeout)
	return c
}

// Validate reports every invalid field, by name.
func (c Config) Validate() error {
	var errs field.Errors
	if c.Environment != "" {
		if _, err := EnvironmentURL(c.Environment); err != nil {
			errs.Add("Environment", "%v", err)
		}
	}
	if _, err := c.baseURL(); err != nil && (c.BaseURL != "" || c.Environment == "") {
		errs.Add("BaseURL", "%v", err)
	}
	if err := CheckEntityIDs(c.EntityIDs); err != nil {
		errs.Add("EntityIDs", "%v", err)
	}
	if c.ClientID == "" {
		errs.Add("ClientID", "is required")
	}
	if c.ClientSecret == "" {
		errs.Add("ClientSecret", "is required")
	}
	return errs.Err()
}

// baseURL is BaseURL, or else the Environment's, without a trailing slash.
func (c Config) baseURL() (string, error) {
	base := strings.TrimRight(strings.TrimSpace(c.BaseURL), "/")
	if base == "" {
		if c.Environment == "" {
			return "", errors.New("is required (a base URL or an environment)")
		}
		return EnvironmentURL(c.Environment)
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("must be an http(s) URL, not %q", c.BaseURL)
	}
	return base, nil
}

// New validates cfg and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("zuora: %w", err)
	}
	cfg = cfg.WithDefaults()
	base, _ := cfg.baseURL()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	hc := o.http
	if hc == nil {
		hc = &http.Client{Transport: upstream.NewTransport()}
	}
	if hc.Timeout == 0 {
		cp := *hc
		cp.Timeout = cfg.Timeout
		hc = &cp
	}
	c := &Client{version: cfg.Version, entities: strings.Join(cfg.EntityIDs, ",")}
	c.up = &upstream.Client{
		API:     "zuora",
		BaseURL: base,
		HTTP:    hc,
		Tokens: &upstream.TokenSource{API: "zuora", URL: base + "/oauth/token",
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, HTTP: hc, Now: o.clock},
		Limiter:   o.limiter,
		Prepare:   c.prepare,
		CheckBody: checkBody,
		Decode:    decode,
		Observe:   o.observer,
		Now:       o.clock,
	}
	// An upstream.ObservingLimiter (TenantLimiter) hears every response's
	// limits itself; a limiter that can only Pause hears a 429's wait.
	_, observing := o.limiter.(upstream.ObservingLimiter)
	if p, ok := o.limiter.(pauser); ok && !observing {
		c.up.OnRetryAfter = func(d time.Duration) {
			// Best effort and detached from the request: the pause is for
			// everyone, not for the call that hit the 429.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = p.Pause(ctx, d)
		}
	}
	return c, nil
}

// Close gives back what the client's limiter keeps for its next request (a
// TenantLimiter's parked leases, limit_park.go), so that a process that
// exits leaves no tenant slot leased behind it. Requests after Close still
// work, without parking.
func (c *Client) Close() error {
	if cl, ok := c.up.Limiter.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// prepare pins the API version and gives each request its own tracking id
// (≤ 64 US-ASCII, none of :;"'), which Zuora echoes for support.
func (c *Client) prepare(r *http.Request) {
	r.Header.Set("Zuora-Version", c.version)
	r.Header.Set("Zuora-Track-Id", newTrackID())
	// A token valid for more than one entity must name the entity on every
	// call (the spec's Zuora-Entity-Ids header).
	if c.entities != "" {
		r.Header.Set("Zuora-Entity-Ids", c.entities)
	}
}

func newTrackID() string {
	b := make([]byte, 12)
	_, _ = crand.Read(b)
	return "zsync-" + hex.EncodeToString(b)
}

// checkKey refuses a key that could not be a Zuora id or number before any
// request is made: path escaping is the second fence, this is the first.
func checkKey(op, what, key string) error {
	msg := ""
	switch {
	case key == "":
		msg = what + " is empty"
	case len(key) > maxKeyLen:
		msg = what + " is longer than 100 characters"
	case strings.Contains(key, "/"), strings.Contains(key, ".."):
		msg = what + " contains / or .."
	case strings.IndexFunc(key, func(r rune) bool { return r < 0x21 || r == 0x7f }) >= 0:
		msg = what + " contains spaces or control characters"
	}
	if msg == "" {
		return nil
	}
	return &upstream.Error{API: "zuora", Op: op, Kind: upstream.Permanent, Message: "invalid " + msg}
}

// do sends req and decodes the answer into out (decode).
func (c *Client) do(ctx context.Context, req upstream.Request, out any) error {
	return c.up.Do(ctx, req, out)
}

// decode is the shared client's Decode, in one pass: a 2xx body that isn't
// JSON at all (a syntax error, found before anything is decoded) is most
// often a proxy's page, and retryable; a field whose value matches neither
// the declared nor the documented example form (Disagreements) is a
// permanent error naming the field: Zuora would send it the same way on
// every attempt.
func decode(body []byte, out any) error {
	err := json.Unmarshal(body, out)
	if err == nil {
		return nil
	}
	if _, syntax := err.(*json.SyntaxError); syntax {
		return err
	}
	msg := "decode response"
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		msg = fmt.Sprintf("field %s: %s matches neither its declared nor its documented form", te.Field, te.Value)
	}
	return &upstream.Error{API: "zuora", Kind: upstream.Permanent, Message: msg, Err: err} // Do fills in the rest
}

// GetSubscription reads the latest version of a subscription by number or by
// the id of any of its versions.
func (c *Client) GetSubscription(ctx context.Context, key string) (*Subscription, error) {
	const op = "GET /v1/subscriptions/{key}"
	if err := checkKey(op, "subscription key", key); err != nil {
		return nil, err
	}
	var s Subscription
	// All segments: the default (last segment) has no chargedThroughDate for
	// a charge whose last segment starts later, say after a price change,
	// while earlier segments are billed.
	err := c.do(ctx, upstream.Request{Method: http.MethodGet, Op: op,
		Path: "/v1/subscriptions/" + upstream.PathEscape(key), Query: url.Values{"charge-detail": {"all-segments"}}}, &s)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// GetAccount reads an account (basic info, billing, both contacts) by number
// or id.
func (c *Client) GetAccount(ctx context.Context, key string) (*Account, error) {
	const op = "GET /v1/accounts/{key}"
	if err := checkKey(op, "account key", key); err != nil {
		return nil, err
	}
	var a Account
	err := c.do(ctx, upstream.Request{Method: http.MethodGet, Op: op,
		Path: "/v1/accounts/" + upstream.PathEscape(key)}, &a)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// BillingPreview asks for an account's future invoice items up to
// req.TargetDate. Zuora has no subscription filter: callers filter items on
// SubscriptionNumber.
func (c *Client) BillingPreview(ctx context.Context, req BillingPreviewRequest) (*BillingPreview, error) {
	const op = "POST /v1/operations/billing-preview"
	var err error
	switch {
	case req.AccountID != "":
		err = checkKey(op, "account id", req.AccountID)
	case req.AccountNumber != "":
		err = checkKey(op, "account number", req.AccountNumber)
	default:
		err = checkKey(op, "account", "")
	}
	if err != nil {
		return nil, err
	}
	if _, perr := time.Parse(time.DateOnly, req.TargetDate); perr != nil {
		return nil, &upstream.Error{API: "zuora", Op: op, Kind: upstream.Permanent,
			Message: "invalid target date (want YYYY-MM-DD)"}
	}
	var bp BillingPreview
	if err := c.do(ctx, upstream.Request{Method: http.MethodPost, Op: op,
		Path: "/v1/operations/billing-preview", Body: req}, &bp); err != nil {
		return nil, err // a value in neither form (FieldError) is permanent already (do)
	}
	return &bp, nil
}

// GetOrder reads an order: who created it and its custom fields decide
// whether a change came from zsync's own side (the loop guard).
func (c *Client) GetOrder(ctx context.Context, orderNumber string) (*Order, error) {
	const op = "GET /v1/orders/{orderNumber}"
	if err := checkKey(op, "order number", orderNumber); err != nil {
		return nil, err
	}
	var out struct {
		Order *Order `json:"order"`
	}
	if err := c.do(ctx, upstream.Request{Method: http.MethodGet, Op: op,
		Path: "/v1/orders/" + upstream.PathEscape(orderNumber)}, &out); err != nil {
		return nil, err
	}
	if out.Order == nil {
		return nil, &upstream.Error{API: "zuora", Op: op, StatusCode: http.StatusOK,
			Kind: upstream.Permanent, Message: "response without an order"}
	}
	return out.Order, nil
}
