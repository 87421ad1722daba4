package limio

import (
	"cmp"
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

	"github.com/zsync/zsync/internal/clip"
	"github.com/zsync/zsync/internal/field"
	"github.com/zsync/zsync/internal/upstream"
)

const api = "limio"

// DefaultTimeout bounds one HTTP exchange when Config.Timeout is zero: as
// long as Zuora's, the documented limio.timeout.
const DefaultTimeout = 20 * time.Second

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
	dialect Dialect
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

// WithDialect sets the write dialect and read paths (see Dialect); the zero
// value is zsync's assumptions.
func WithDialect(d Dialect) Option { return func(o *options) { o.dialect = d } }

// WithClock replaces the clock (token expiry, Retry-After dates).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Client talks to one Limio tenant. It is safe for concurrent use.
type Client struct {
	c     *upstream.Client
	index Index
	d     Dialect
}

// DefaultConfig is every default of the client (config/ takes its defaults
// from here).
func DefaultConfig() Config { return Config{Timeout: DefaultTimeout} }

// WithDefaults fills zero (or negative) values from DefaultConfig.
func (c Config) WithDefaults() Config {
	c.Timeout = cmp.Or(max(c.Timeout, 0), DefaultConfig().Timeout)
	return c
}

// Validate reports every invalid field, by name.
func (c Config) Validate() error {
	var errs field.Errors
	base := strings.TrimRight(strings.TrimSpace(c.BaseURL), "/")
	if base == "" {
		errs.Add("BaseURL", "is required")
	} else if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs.Add("BaseURL", "%q must be http(s)://host", c.BaseURL)
	}
	if c.ClientID == "" {
		errs.Add("ClientID", "is required")
	}
	if c.ClientSecret == "" {
		errs.Add("ClientSecret", "is required")
	}
	return errs.Err()
}

// New returns a Client for cfg.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("limio: %w", err)
	}
	cfg = cfg.WithDefaults()
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.dialect.Validate(); err != nil {
		return nil, fmt.Errorf("limio: %w", err)
	}
	timeout := cfg.Timeout
	// The timeout lives on the HTTP client, not on a derived context: an
	// expired context reads as the caller giving up, a slow Limio must read as
	// a retryable failure.
	hc := &http.Client{Timeout: timeout, Transport: upstream.NewTransport()}
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
		d:     o.dialect.WithDefaults(),
	}, nil
}

// Dialect is the dialect the client speaks (defaults filled in).
func (c *Client) Dialect() Dialect { return c.d }

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
				e.Message = clip.To(s, 200)
				break
			}
		}
		if s, ok := m["code"].(string); ok {
			e.Code = clip.To(s, 50)
		}
	}
	if e.Message == "" {
		e.Message = clip.Line(string(body), 200)
	}
	return e
}

// idPattern is what an id or lookup key may look like before it reaches a
// URL: Limio ids (sub-<hex>), 12-character references, Zuora numbers (A-S…).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

// ValidID reports whether id may reach a URL as an id or lookup key (the
// client refuses any other before a request is built; the sandbox too).
func ValidID(id string) bool { return idPattern.MatchString(id) }

func invalid(op, what, v string) error {
	return &upstream.Error{API: api, Op: op, Kind: upstream.Permanent,
		Message: fmt.Sprintf("invalid %s %q", what, clip.To(v, 40))}
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
	if !validPathType(pathType) {
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
	c.d.readStatus(&s.Envelope, s.Data.Status)
	return &s, nil
}

// GetSchedule fetches a schedule entry by id (schedule-…).
func (c *Client) GetSchedule(ctx context.Context, id string) (*Schedule, error) {
	var s Schedule
	if err := c.get(ctx, PathSchedules, id, &s); err != nil {
		return nil, err
	}
	c.d.readStatus(&s.Envelope, s.Data.Status)
	return &s, nil
}

// GetObject fetches any object as it comes (zsync check compares objects
// before and after a write).
func (c *Client) GetObject(ctx context.Context, pathType, id string) (map[string]any, error) {
	var m map[string]any
	if err := c.get(ctx, pathType, id, &m); err != nil {
		return nil, err
	}
	return m, nil
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
// docs name the endpoint without its path; Dialect.RelatedPath picks the
// plural). The answer carries the subscription's customer among its items,
// so no second request is made: Related.Customer is nil when Limio sent none,
// and a caller that needs it then calls GetCustomer with
// Subscription.Customer. Events, orders and other record types are ignored.
// With Dialect.SchedulesFrom "list" the schedule entries come from the
// schedules listing instead (ListSchedulesOf).
func (c *Client) GetRelated(ctx context.Context, subID string) (*Related, error) {
	op := "GET /objects/limio/" + c.d.RelatedPath + "/{id}/related"
	if err := checkID(op, subID); err != nil {
		return nil, err
	}
	items, err := c.RelatedItems(ctx, c.d.RelatedPath, subID)
	if err != nil {
		return nil, err
	}
	rel := &Related{}
	for _, raw := range items {
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
			if c.d.SchedulesFrom == SchedulesList {
				continue
			}
			var s Schedule
			err = json.Unmarshal(raw, &s)
			c.d.readStatus(&s.Envelope, s.Data.Status)
			rel.Schedules = append(rel.Schedules, s)
		}
		if err != nil {
			return nil, decodeErr(op, err)
		}
	}
	if c.d.SchedulesFrom == SchedulesList {
		if rel.Schedules, err = c.ListSchedulesOf(ctx, subID); err != nil {
			return nil, err
		}
	}
	return rel, nil
}

// RelatedItems is the raw answer of the related endpoint under pathType
// ("subscription" or "subscriptions"), for GetRelated and zsync check.
func (c *Client) RelatedItems(ctx context.Context, pathType, subID string) ([]json.RawMessage, error) {
	op := "GET /objects/limio/" + pathType + "/{id}/related"
	if pathType != RelatedSingular && pathType != RelatedPlural {
		return nil, invalid(op, "related path type", pathType)
	}
	if err := checkID(op, subID); err != nil {
		return nil, err
	}
	var resp struct {
		Items []json.RawMessage `json:"items"`
	}
	req := upstream.Request{Method: http.MethodGet, Op: op,
		Path: "/objects/limio/" + pathType + "/" + upstream.PathEscape(subID) + "/related"}
	// A 404 is a missing subscription or a missing path: Limio doesn't say
	// which, so it stays not found here; zsync check tells them apart.
	if err := c.c.Do(ctx, req, &resp); err != nil {
		return nil, err
	}
	return resp.Items, nil
}

// listSchedulePages bounds ListSchedulesOf (100 entries a page).
const listSchedulePages = 100000

// ListSchedulesOf reads a subscription's schedule entries from the schedules
// listing: every summary whose related is subID, each then read in full (a
// summary is not the whole entry). The listing is the tenant's, so this costs
// a scan of every schedule entry: the alternative for tenants whose /related
// has none. A summary without "related" can't be attributed: that fails
// loudly rather than reading as "no entries".
func (c *Client) ListSchedulesOf(ctx context.Context, subID string) ([]Schedule, error) {
	const op = "GET /objects/limio/schedules"
	var ids []string
	cursor := ""
	for n := 0; n < listSchedulePages; n++ {
		var items []Schedule
		var next string
		if err := c.list(ctx, PathSchedules, cursor, scanPageSize, &items, &next); err != nil {
			return nil, listingError(err)
		}
		for _, it := range items {
			if it.Related == "" {
				return nil, NewAssumptionError(op, AssumptionRelatedSchedules, http.StatusOK,
					"limio.schedules_from=list needs schedule summaries that carry related; %s has none", it.ID)
			}
			if it.Related == subID && idPattern.MatchString(it.ID) {
				ids = append(ids, it.ID)
			}
		}
		if next == "" || next == cursor || len(items) == 0 {
			break
		}
		cursor = next
	}
	out := make([]Schedule, 0, len(ids))
	for _, id := range ids {
		s, err := c.GetSchedule(ctx, id)
		if errors.Is(err, upstream.ErrNotFound) {
			continue // gone since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, nil
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
	var items []Subscription
	var next string
	if err := c.list(ctx, PathSubscriptions, cursor, limit, &items, &next); err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// ListSchedules returns one page of schedule entry summaries and the
// cursor of the next page, like ListSubscriptions.
func (c *Client) ListSchedules(ctx context.Context, cursor string, limit int) ([]Schedule, string, error) {
	var items []Schedule
	var next string
	if err := c.list(ctx, PathSchedules, cursor, limit, &items, &next); err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// list reads one page of a listing into items.
func (c *Client) list(ctx context.Context, pathType, cursor string, limit int, items any, next *string) error {
	op := "GET /objects/limio/" + pathType
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("queryMore", cursor)
	}
	var resp struct {
		Items     json.RawMessage `json:"items"`
		QueryMore string          `json:"queryMore"`
	}
	req := upstream.Request{Method: http.MethodGet, Path: "/objects/limio/" + pathType, Op: op, Query: q}
	if err := c.c.Do(ctx, req, &resp); err != nil {
		return err
	}
	if len(resp.Items) > 0 {
		if err := json.Unmarshal(resp.Items, items); err != nil {
			return decodeErr(op, err)
		}
	}
	*next = resp.QueryMore
	return nil
}

// Update writes a partial update to one object: PUT
// /api/objects/limio/{pathType}/{id} with {"data":{…only the fields in p,
// nested…}}. An empty patch sends nothing.
//
// Limio documents only name and data in the PUT body; a top-level status
// (FieldStatus) is sent there too. zsync assumes Limio accepts it (the
// sandbox does); Dialect.StatusField "data.status" moves it under data for a
// tenant that ignores it (zsync check says which). The syncer reads status
// writes back, so an ignored one fails loudly instead of passing silently.
func (c *Client) Update(ctx context.Context, pathType, id string, p Patch) error {
	op := "PUT /objects/limio/" + pathType + "/{id}"
	if !validPathType(pathType) {
		return invalid(op, "path type", pathType)
	}
	if err := checkID(op, id); err != nil {
		return err
	}
	if p.Len() == 0 {
		return nil
	}
	body, err := c.d.statusPatch(p).Body()
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
	if !validPathType(pathType) {
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
	c.d.statusBody(body)
	err = c.c.Do(ctx, upstream.Request{Method: http.MethodPut, Path: objectPath(pathType, id), Op: op, Body: body}, nil)
	var e *upstream.Error
	if errors.As(err, &e) && e.Kind == upstream.NotFound {
		// Not "no such object": the object is the one being made. A tenant
		// that answers 404 here doesn't create by PUT, and no retry will.
		return assumptionFrom(e, AssumptionPutCreates,
			"Limio answered %d to a PUT of the new %s %s: it does not create objects by PUT", e.StatusCode, pathType, id)
	}
	return err
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
