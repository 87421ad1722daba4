package zuora

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/zsync/zsync/internal/upstream"
)

// SubscriptionQuery selects subscriptions for the sweep and for bulk re-sync.
// Zero fields don't filter.
type SubscriptionQuery struct {
	Status       string    // e.g. "Active"
	UpdatedSince time.Time // UpdatedDate >= this
	// TermEndFrom and TermEndTo (YYYY-MM-DD, both or neither) select termed
	// subscriptions whose term ends in [from, to]: a term that lapses changes
	// nothing in Zuora (no UpdatedDate, no callout), yet Limio must show it.
	TermEndFrom, TermEndTo string
}

// ErrUpdatedSince is ParseUpdatedSince's refusal; callers name their flag or
// field around it.
var ErrUpdatedSince = errors.New("want YYYY-MM-DD or an RFC 3339 time")

// ParseUpdatedSince reads an operator's UpdatedSince (zsync resync
// --updated-since, POST /v1/resyncs): a date (midnight UTC) or an RFC 3339
// time, in UTC.
func ParseUpdatedSince(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, ErrUpdatedSince
}

// zoqlTime is how a datetime literal is written in ZOQL (UTC, explicit offset).
const zoqlTime = "2006-01-02T15:04:05.000-07:00"

// maxQueryPages stops a runaway queryLocator loop.
const maxQueryPages = 100000

type queryResponse struct {
	Records      []map[string]any `json:"records"`
	Size         int              `json:"size"`
	Done         Bool             `json:"done"`
	QueryLocator string           `json:"queryLocator"`
}

// QuerySubscriptions streams the distinct numbers of the subscriptions that
// match q, calling fn once per number; an error from fn stops the query and is
// returned.
//
// It uses ZOQL (POST /v1/action/query, then /v1/action/queryMore) because the
// question is tenant-wide ("what changed since the last sweep"): the orders
// listing is per subscription, so it can only answer once the subscription is
// already known. ZOQL returns one row per subscription version, so numbers are
// deduplicated here.
func (c *Client) QuerySubscriptions(ctx context.Context, q SubscriptionQuery, fn func(number string) error) error {
	zoql, err := subscriptionZOQL(q)
	if err != nil {
		return err
	}
	seen := map[string]struct{}{}
	return c.queryField(ctx, zoql, "Name", func(name string) error {
		if _, dup := seen[name]; dup {
			return nil
		}
		seen[name] = struct{}{}
		return fn(name)
	})
}

// queryField runs a ZOQL query through every queryMore page and calls fn with
// each record's field (a string; records without it are skipped).
func (c *Client) queryField(ctx context.Context, zoql, field string, fn func(string) error) error {
	const op = "POST /v1/action/query"
	var page queryResponse
	err := c.do(ctx, upstream.Request{Method: http.MethodPost, Op: op, Path: "/v1/action/query",
		Body: map[string]string{"queryString": zoql}}, &page)
	for n := 0; ; n++ {
		if err != nil {
			return err
		}
		for _, r := range page.Records {
			v, _ := r[field].(string)
			if v == "" {
				continue
			}
			if err := fn(v); err != nil {
				return err
			}
		}
		if page.Done || page.QueryLocator == "" {
			return nil
		}
		if n >= maxQueryPages {
			return &upstream.Error{API: "zuora", Op: op, Kind: upstream.Permanent, Message: "too many query pages"}
		}
		locator := page.QueryLocator
		page = queryResponse{}
		err = c.do(ctx, upstream.Request{Method: http.MethodPost, Op: "POST /v1/action/queryMore",
			Path: "/v1/action/queryMore", Body: map[string]string{"queryLocator": locator}}, &page)
	}
}

// ChangedSubscriptions returns the numbers of the subscriptions updated at or
// after since, for the periodic sweep.
func (c *Client) ChangedSubscriptions(ctx context.Context, since time.Time) ([]string, error) {
	var out []string
	err := c.QuerySubscriptions(ctx, SubscriptionQuery{UpdatedSince: since}, func(n string) error {
		out = append(out, n)
		return nil
	})
	return out, err
}

// subscriptionZOQL builds the query. Values are validated, not escaped: ZOQL
// has no documented escape for a quote inside a literal.
func subscriptionZOQL(q SubscriptionQuery) (string, error) {
	var where []string
	if q.Status != "" {
		ok := len(q.Status) <= 40 && strings.IndexFunc(q.Status, func(r rune) bool {
			return !(r == ' ' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) < 0
		if !ok {
			return "", &upstream.Error{API: "zuora", Op: "POST /v1/action/query", Kind: upstream.Permanent,
				Message: "invalid status filter"}
		}
		where = append(where, "Status = '"+q.Status+"'")
	}
	if !q.UpdatedSince.IsZero() {
		where = append(where, "UpdatedDate >= '"+q.UpdatedSince.UTC().Format(zoqlTime)+"'")
	}
	if q.TermEndFrom != "" || q.TermEndTo != "" {
		from, errF := time.Parse(time.DateOnly, q.TermEndFrom)
		to, errT := time.Parse(time.DateOnly, q.TermEndTo)
		if errF != nil || errT != nil || to.Before(from) {
			return "", &upstream.Error{API: "zuora", Op: "POST /v1/action/query", Kind: upstream.Permanent,
				Message: "invalid term end range"}
		}
		where = append(where, "TermType = 'TERMED'",
			"TermEndDate >= '"+from.Format(time.DateOnly)+"'", "TermEndDate <= '"+to.Format(time.DateOnly)+"'")
	}
	s := "select Name, Status, UpdatedDate from Subscription"
	if len(where) > 0 {
		s += " where " + strings.Join(where, " and ")
	}
	return s, nil
}
