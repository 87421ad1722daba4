package limio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zsync/zsync/internal/upstream"
)

const api = "limio"

// DefaultTimeout bounds one HTTP exchange when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// scanPageSize is the page size Resolve's scan asks for.
const scanPageSize = 100

// Config is what a Client needs.
type Config struct {
	BaseURL      string // tenant root, e.g. https://acme.prod.limio.com
	ClientID     string
	ClientSecret string
	Timeout      time.Duration // per HTTP exchange; 0 means DefaultTimeout
}

// Option adjusts a Client.
type Option func(*options)

type options struct {
	http    *http.Client
	index   Index
	observe func(op string, status int, d time.Duration)
	now     func() time.Time
}

// WithHTTPClient sets the HTTP client (its Timeout is set from Config.Timeout
// when it has none).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.http = c } }

// WithIndex sets the key → subscription id index Resolve uses.
func WithIndex(ix Index) Option { return func(o *options) { o.index = ix } }

// WithObserver is told about every API response (status 0 if none).
func WithObserver(f func(op string, status int, d time.Duration)) Option {
	return func(o *options) { o.observe = f }
}

// WithClock replaces the clock (token expiry, Retry-After dates).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Client talks to one Limio tenant. It is safe for concurrent use.
type Client struct {
	c     *upstream.Client
	index Index
}

// New returns a Client for cfg.
func New(cfg Config, opts ...Option) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	u, err := url.Parse(base)
	switch {
	case base == "":
		return nil, errors.New("limio: base url is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("limio: base url %q must be http(s)://host", cfg.BaseURL)
	case cfg.ClientID == "":
		return nil, errors.New("limio: client id is required")
	case cfg.ClientSecret == "":
		return nil, errors.New("limio: client secret is required")
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// The timeout lives on the HTTP client, not on a derived context: an
	// expired context reads as the caller giving up, a slow Limio must read as
	// a retryable failure.
	hc := &http.Client{Timeout: timeout}
	if o.http != nil {
		c := *o.http
		if c.Timeout == 0 {
			c.Timeout = timeout
		}
		hc = &c
	}
	tokens := &upstream.TokenSource{
		API: api, URL: base + "/oauth2/token",
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		HTTP: hc, Now: o.now,
	}
	return &Client{
		c: &upstream.Client{
			API: api, BaseURL: base + "/api", HTTP: hc, Tokens: tokens,
			CheckBody: checkBody, Observe: o.observe, Now: o.now,
		},
		index: o.index,
	}, nil
}

// checkBody classifies a Limio answer. Limio publishes no error body
// schema, so the message is taken from the usual keys when the
// body is JSON. A 401 is left to upstream, which retries it once.
func checkBody(status int, body []byte) *upstream.Error {
	if status >= 200 && status <= 299 || status == http.StatusUnauthorized {
		return nil
	}
	e := &upstream.Error{Kind: upstream.KindForStatus(status)}
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"message", "error_description", "error", "errorMessage"} {
			if s, ok := m[k].(string); ok && s != "" {
				e.Message = clip(s, 200)
				break
			}
		}
		if s, ok := m["code"].(string); ok {
			e.Code = clip(s, 50)
		}
	}
	if e.Message == "" {
		e.Message = clip(strings.Join(strings.Fields(string(body)), " "), 200)
	}
	return e
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// idPattern is what an id or lookup key may look like before it reaches a
// URL: Limio ids (sub-<hex>), 12-character references, Zuora numbers (A-S…).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

func invalid(op, what, v string) error {
	return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent,
		Message: fmt.Sprintf("invalid %s %q", what, clip(v, 40))}
}

func checkID(op, id string) error {
	if !idPattern.MatchString(id) {
		return invalid(op, "id", id)
	}
	return nil
}

func objectPath(pathType, id string) string {
	return "/objects/limio/" + upstream.PathEscape(pathType) + "/" + upstream.PathEscape(id)
}

// get fetches one object into out.
func (c *Client) get(ctx context.Context, pathType, id string, out any) error {
	op := "GET /objects/limio/" + pathType + "/{id}"
	if !ValidPathType(pathType) {
		return invalid(op, "path type", pathType)
	}
	if err := checkID(op, id); err != nil {
		return err
	}
	return c.c.Do(ctx, upstream.Request{Method: http.MethodGet, Path: objectPath(pathType, id), Op: op}, out)
}

// GetSubscription fetches a subscription by id (sub-…).
func (c *Client) GetSubscription(ctx context.Context, id string) (*Subscription, error) {
	var s Subscription
	if err := c.get(ctx, PathSubscriptions, id, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// GetCustomer fetches a customer by id (cus-…).
func (c *Client) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	var cu Customer
	if err := c.get(ctx, PathCustomers, id, &cu); err != nil {
		return nil, err
	}
	return &cu, nil
}

// GetRelated fetches the objects related to a subscription in one request,
// at the path third parties observed (singular "subscription"; Limio's own
// docs name the endpoint without its path). The answer carries the
// subscription's customer among its items, so no second request is made:
// Related.Customer is nil when Limio sent none, and a caller that needs it
// then calls GetCustomer with Subscription.Customer. Events, orders and other
// record types are ignored.
func (c *Client) GetRelated(ctx context.Context, subID string) (*Related, error) {
	const op = "GET /objects/limio/subscription/{id}/related"
	if err := checkID(op, subID); err != nil {
		return nil, err
	}
	var resp struct {
		Items []json.RawMessage `json:"items"`
	}
	req := upstream.Request{Method: http.MethodGet, Op: op,
		Path: "/objects/limio/subscription/" + upstream.PathEscape(subID) + "/related"}
	if err := c.c.Do(ctx, req, &resp); err != nil {
		return nil, err
	}
	rel := &Related{}
	for _, raw := range resp.Items {
		var head struct {
			RecordType string `json:"record_type"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, decodeErr(op, err)
		}
		var err error
		switch head.RecordType {
		case RecordCustomer:
			if rel.Customer == nil {
				var cu Customer
				err = json.Unmarshal(raw, &cu)
				rel.Customer = &cu
			}
		case RecordAddress:
			var a Address
			err = json.Unmarshal(raw, &a)
			rel.Addresses = append(rel.Addresses, a)
		case RecordSchedule:
			var s Schedule
			err = json.Unmarshal(raw, &s)
			rel.Schedules = append(rel.Schedules, s)
		}
		if err != nil {
			return nil, decodeErr(op, err)
		}
	}
	return rel, nil
}

func decodeErr(op string, err error) error {
	// Retryable, like upstream.Client's own decode failures.
	return &upstream.Error{API: api, Op: op, StatusCode: http.StatusOK, Kind: upstream.Retryable,
		Message: "decode response", Err: err}
}

// ListSubscriptions returns one page of subscription summaries (not full
// objects: Limio's list answers summaries) and the cursor of the next page,
// empty after the last. cursor is empty for the first page.
func (c *Client) ListSubscriptions(ctx context.Context, cursor string, limit int) ([]Subscription, string, error) {
	const op = "GET /objects/limio/subscriptions"
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("queryMore", cursor)
	}
	var resp struct {
		Items     []Subscription `json:"items"`
		QueryMore string         `json:"queryMore"`
	}
	req := upstream.Request{Method: http.MethodGet, Path: "/objects/limio/subscriptions", Op: op, Query: q}
	if err := c.c.Do(ctx, req, &resp); err != nil {
		return nil, "", err
	}
	return resp.Items, resp.QueryMore, nil
}

// Update writes a partial update to one object: PUT
// /api/objects/limio/{pathType}/{id} with {"data":{…only the fields in p,
// nested…}}. An empty patch sends nothing.
//
// Limio documents only name and data in the PUT body; a top-level status
// (FieldStatus) is sent there too. zsync assumes Limio accepts it (the
// sandbox does); an adopter whose tenant ignores it moves status under data
// in fields.go.
func (c *Client) Update(ctx context.Context, pathType, id string, p Patch) error {
	op := "PUT /objects/limio/" + pathType + "/{id}"
	if !ValidPathType(pathType) {
		return invalid(op, "path type", pathType)
	}
	if err := checkID(op, id); err != nil {
		return err
	}
	if p.Len() == 0 {
		return nil
	}
	body, err := p.Body()
	if err != nil {
		return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent, Message: "encode patch", Err: err}
	}
	return c.c.Do(ctx, upstream.Request{Method: http.MethodPut, Path: objectPath(pathType, id), Op: op, Body: body}, nil)
}

// Create creates an object under id.
//
// ASSUMPTION — the one place zsync encodes it: Limio documents no POST for
// subscriptions, customers, addresses or schedules, only a PUT that updates
// an object by id. zsync creates by PUT of the full object (envelope with id
// and record_type, plus data) to a deterministic id (NewID), which the
// sandbox accepts. Whether a real tenant accepts a PUT to an unknown id must
// be confirmed with Limio; an adopter whose tenant refuses it replaces this
// method (for subscriptions, e.g. with Limio's Send Order API, POST
// /api/order; for schedules and addresses, with Limio's own sync).
//
// Creating an id that exists with the same content is harmless (the PUT
// merges the same values), so a create re-run after a crash is idempotent.
func (c *Client) Create(ctx context.Context, pathType, id string, obj any) error {
	op := "PUT /objects/limio/" + pathType + "/{id} (create)"
	if !ValidPathType(pathType) {
		return invalid(op, "path type", pathType)
	}
	if err := checkID(op, id); err != nil {
		return err
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent, Message: "encode object", Err: err}
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent, Message: "object is not a JSON object", Err: err}
	}
	if got, ok := body["id"]; ok && got != id && got != "" {
		return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent,
			Message: fmt.Sprintf("object id %v does not match %q", got, id)}
	}
	body["id"] = id
	if rt, _ := body["record_type"].(string); rt == "" {
		return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent, Message: "object without record_type"}
	}
	if _, ok := body["data"].(map[string]any); !ok {
		return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent, Message: "object without data"}
	}
	return c.c.Do(ctx, upstream.Request{Method: http.MethodPut, Path: objectPath(pathType, id), Op: op, Body: body}, nil)
}

// PostTimeline records an event on a subscription's timeline.
func (c *Client) PostTimeline(ctx context.Context, ev TimelineEvent) error {
	const op = "POST /timeline/subscription"
	switch {
	case ev.ForSubscription.ID == "" && ev.ForSubscription.Name == "":
		return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent, Message: "event names no subscription"}
	case ev.ForSubscription.ID != "" && !idPattern.MatchString(ev.ForSubscription.ID):
		return invalid(op, "id", ev.ForSubscription.ID)
	case ev.Name == "" || ev.Type == "":
		return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent, Message: "event without name or type"}
	}
	return c.c.Do(ctx, upstream.Request{Method: http.MethodPost, Path: "/timeline/subscription", Op: op, Body: ev}, nil)
}
