package zuora

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/zsync/zsync/internal/upstream"
)

// Account-level reads: a contact or account edit changes no subscription, so
// zsync asks which accounts changed and fans out to their subscriptions.

// accountPageSize is the most GET /v1/subscriptions/accounts/{account-key}
// returns per page (the spec's pageSize maximum).
const accountPageSize = 40

// maxAccountPages stops a runaway nextPage loop (40 × 2,500 = 100,000
// subscriptions on one account).
const maxAccountPages = 2500

type accountSubscriptionsPage struct {
	Subscriptions []struct {
		SubscriptionNumber string `json:"subscriptionNumber"`
	} `json:"subscriptions"`
	NextPage string `json:"nextPage"`
}

// AccountSubscriptions streams the numbers of every subscription of an account
// (number or id), page by page, calling fn once per number; an error from fn
// stops the listing and is returned. An unknown account is upstream.ErrNotFound.
func (c *Client) AccountSubscriptions(ctx context.Context, accountKey string, fn func(number string) error) error {
	const op = "GET /v1/subscriptions/accounts/{account-key}"
	if err := checkKey(op, "account key", accountKey); err != nil {
		return err
	}
	seen := map[string]struct{}{}
	for page := 1; ; page++ {
		var p accountSubscriptionsPage
		q := url.Values{"pageSize": {strconv.Itoa(accountPageSize)}, "page": {strconv.Itoa(page)}}
		if err := c.do(ctx, upstream.Request{Method: http.MethodGet, Op: op,
			Path: "/v1/subscriptions/accounts/" + upstream.PathEscape(accountKey), Query: q}, &p); err != nil {
			return err
		}
		for _, s := range p.Subscriptions {
			if s.SubscriptionNumber == "" {
				continue
			}
			if _, dup := seen[s.SubscriptionNumber]; dup {
				continue
			}
			seen[s.SubscriptionNumber] = struct{}{}
			if err := fn(s.SubscriptionNumber); err != nil {
				return err
			}
		}
		// nextPage is a full URL on Zuora's host; the page number is all
		// zsync needs from it, and its presence is the only signal of more.
		if p.NextPage == "" || len(p.Subscriptions) == 0 {
			return nil
		}
		if page >= maxAccountPages {
			return &upstream.Error{API: "zuora", Op: op, Kind: upstream.Permanent, Message: "too many subscription pages"}
		}
	}
}

// ChangedAccounts streams the accounts whose Account record or one of whose
// Contact records (bill-to, sold-to, any other) was updated at or after since,
// calling fn with an account number (from Account) or an account id (from
// Contact: a contact names its account by id). A key may come twice, once in
// each form; the fan-out's dedup absorbs that.
func (c *Client) ChangedAccounts(ctx context.Context, since time.Time, fn func(accountKey string) error) error {
	at := since.UTC().Format(zoqlTime)
	seen := map[string]struct{}{}
	yield := func(key string) error {
		if key == "" {
			return nil
		}
		if _, dup := seen[key]; dup {
			return nil
		}
		seen[key] = struct{}{}
		return fn(key)
	}
	if err := c.queryField(ctx, "select AccountNumber from Account where UpdatedDate >= '"+at+"'", "AccountNumber", yield); err != nil {
		return err
	}
	return c.queryField(ctx, "select AccountId from Contact where UpdatedDate >= '"+at+"'", "AccountId", yield)
}
