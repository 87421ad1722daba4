package limio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/internal/upstream"
)

// Index maps lookup keys (Limio reference or name, Zuora subscription
// number) to Limio subscription ids. It is a cache: Resolve verifies every
// hit, and a lost index is rebuilt by the next scan (see the package doc).
type Index interface {
	Get(ctx context.Context, key string) (subID string, ok bool, err error)
	Put(ctx context.Context, key, subID string) error
}

// An index may also drop entries and write many at once; Resolve uses these
// when present (RedisIndex has both), so Index itself stays two methods.
type indexDeleter interface {
	Delete(ctx context.Context, key string) error
}

type indexBatcher interface {
	PutAll(ctx context.Context, m map[string]string) error
}

// defaultIndexPrefix prefixes RedisIndex keys.
const defaultIndexPrefix = "zsync:limio:index:"

// RedisIndex is an Index in Redis, shared by every worker process. Entries
// never expire: a key → id mapping doesn't change once made, and a wrong one
// is caught on use. Each process also keeps the entries it read or wrote
// (localIndex), so a sync's lookup is usually no round trip.
type RedisIndex struct {
	rdb    redis.UniversalClient
	prefix string
	local  localIndex
}

// NewRedisIndex returns an index storing keys under prefix (empty:
// defaultIndexPrefix).
func NewRedisIndex(rdb redis.UniversalClient, prefix string) *RedisIndex {
	if prefix == "" {
		prefix = defaultIndexPrefix
	}
	return &RedisIndex{rdb: rdb, prefix: prefix}
}

// Get returns the subscription id stored for key.
func (x *RedisIndex) Get(ctx context.Context, key string) (string, bool, error) {
	if v, ok := x.local.get(key); ok {
		return v, true, nil
	}
	v, err := x.rdb.Get(ctx, x.prefix+key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("limio index get: %w", err)
	}
	x.local.put(key, v)
	return v, true, nil
}

// Put stores key → subID.
func (x *RedisIndex) Put(ctx context.Context, key, subID string) error {
	if err := x.rdb.Set(ctx, x.prefix+key, subID, 0).Err(); err != nil {
		return fmt.Errorf("limio index put: %w", err)
	}
	x.local.put(key, subID)
	return nil
}

// PutAll stores many mappings in one round trip (a scan writes a page at a
// time).
func (x *RedisIndex) PutAll(ctx context.Context, m map[string]string) error {
	if len(m) == 0 {
		return nil
	}
	_, err := x.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, v := range m {
			p.Set(ctx, x.prefix+k, v, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("limio index put: %w", err)
	}
	for k, v := range m {
		x.local.put(k, v)
	}
	return nil
}

// Delete drops key (a stale entry).
func (x *RedisIndex) Delete(ctx context.Context, key string) error {
	x.local.drop(key)
	if err := x.rdb.Del(ctx, x.prefix+key).Err(); err != nil {
		return fmt.Errorf("limio index delete: %w", err)
	}
	return nil
}

// Remember records that key names subscription subID (the syncer calls it
// after creating a subscription, so the next sync finds it without a scan).
// Without an index it does nothing.
func (c *Client) Remember(ctx context.Context, key, subID string) error {
	const op = "remember"
	if err := checkID(op, key); err != nil {
		return err
	}
	if err := checkID(op, subID); err != nil {
		return err
	}
	if c.index == nil {
		return nil
	}
	return c.index.Put(ctx, key, subID)
}

// Resolve finds the subscription key names: a Limio id (sub-…) is fetched
// directly; a reference or Zuora subscription number is looked up in the
// index (hit verified by a GET) and otherwise found by scanning every
// subscription summary, which warms the index. Nothing found is an
// *upstream.Error of Kind NotFound.
func (c *Client) Resolve(ctx context.Context, key string) (*Subscription, error) {
	const op = "resolve"
	if err := checkID(op, key); err != nil {
		return nil, err
	}
	if strings.HasPrefix(key, "sub-") {
		return c.GetSubscription(ctx, key)
	}
	if c.index != nil {
		// An unreadable index is a miss: the scan is slower, not wrong.
		if id, ok, err := c.index.Get(ctx, key); err == nil && ok {
			s, err := c.GetSubscription(ctx, id)
			switch {
			case err == nil && matches(s, key):
				return s, nil
			case err != nil && (upstream.IsRetryable(err) || upstream.IsContextError(err) || unauthorized(err)):
				// Says nothing about the mapping: a scan would meet the same.
				return nil, err
			default: // gone, unusable or renamed: stale
				c.forget(ctx, key)
			}
		}
	}
	id, err := c.scan(ctx, key)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, &upstream.Error{API: api, Op: op, StatusCode: http.StatusNotFound, Kind: upstream.NotFound,
			Message: fmt.Sprintf("no subscription with id, reference or Zuora number %q", key)}
	}
	s, err := c.GetSubscription(ctx, id)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// unauthorized reports a refusal of zsync's credentials.
func unauthorized(err error) bool {
	var e *upstream.Error
	return errors.As(err, &e) && e.Kind == upstream.Unauthorized
}

// matches reports whether key names s.
func matches(s *Subscription, key string) bool {
	return s.ID == key || s.Reference == key || s.Name == key ||
		(s.Data.Zuora != nil && s.Data.Zuora.SubscriptionNumber == key)
}

func (c *Client) forget(ctx context.Context, key string) {
	if d, ok := c.index.(indexDeleter); ok {
		_ = d.Delete(ctx, key)
	}
}

// scan pages through every subscription summary and returns the id key
// names (empty if none). It reads to the end even after a match so that one
// scan warms the index for every subscription; a Zuora number match wins
// over a reference or name match.
//
// Summaries are assumed to carry reference or data.zuora (Dialect.Lookup
// "summary"). When a scan finds nothing and no summary carried either, the
// listing can't tell whether Limio knows key, and answering "unknown" would
// make the syncer create a second subscription: that is an AssumptionError
// instead. With Dialect.Lookup "full", every subscription whose summary lacks
// data.zuora is read in full.
func (c *Client) scan(ctx context.Context, key string) (string, error) {
	var found, foundByZuora string
	cursor := ""
	listed, informative := 0, 0
	for {
		items, next, err := c.ListSubscriptions(ctx, cursor, scanPageSize)
		if err != nil {
			return "", listingError(err)
		}
		m := map[string]string{}
		for i := range items {
			s := &items[i]
			if !idPattern.MatchString(s.ID) {
				continue
			}
			listed++
			if s.Reference != "" || s.Data.Zuora != nil {
				informative++
			}
			if c.d.Lookup == LookupFull && s.Data.Zuora == nil {
				full, err := c.GetSubscription(ctx, s.ID)
				switch {
				case errors.Is(err, upstream.ErrNotFound):
					continue // gone since the listing
				case err != nil:
					return "", err
				}
				s = full
			}
			for _, k := range []string{s.Reference, s.Name} {
				if k != "" && idPattern.MatchString(k) {
					m[k] = s.ID
				}
			}
			if s.Data.Zuora != nil && idPattern.MatchString(s.Data.Zuora.SubscriptionNumber) {
				m[s.Data.Zuora.SubscriptionNumber] = s.ID
				if s.Data.Zuora.SubscriptionNumber == key && foundByZuora == "" {
					foundByZuora = s.ID
				}
			}
			if found == "" && matches(s, key) {
				found = s.ID
			}
		}
		c.remember(ctx, m)
		if next == "" || next == cursor || len(items) == 0 {
			break
		}
		cursor = next
	}
	if foundByZuora != "" {
		return foundByZuora, nil
	}
	if found == "" && c.d.Lookup == LookupSummary && listed > 0 && informative == 0 {
		return "", NewAssumptionError("resolve", AssumptionSummaryZuora, http.StatusOK,
			"none of %d subscription summaries carries reference or data.zuora, so the listing can't say whether Limio knows %q; set limio.lookup=full",
			listed, key)
	}
	return found, nil
}

// listingError keeps a failed listing from reading as "no such
// subscription": a 404 there means the listing itself is missing (a tenant
// without the path, say), and taking it for an unknown subscription would
// create a duplicate. It becomes a permanent error of its own, without the
// original in its chain (whose kind would still match ErrNotFound).
func listingError(err error) error {
	var e *upstream.Error
	if !errors.As(err, &e) || e.Kind != upstream.NotFound {
		return err
	}
	cp := *e
	cp.Kind, cp.Err = upstream.Permanent, nil
	cp.Message = "subscription listing not found (not a missing subscription; check the Objects API path): " + e.Message
	return &cp
}

// remember writes a scan's mappings; failures only cost a later scan.
func (c *Client) remember(ctx context.Context, m map[string]string) {
	if c.index == nil || len(m) == 0 {
		return
	}
	if b, ok := c.index.(indexBatcher); ok {
		_ = b.PutAll(ctx, m)
		return
	}
	for k, v := range m {
		_ = c.index.Put(ctx, k, v)
	}
}
