package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/syncer"
)

// StoreConfig configures the OutcomeStore. Zero values take the defaults.
type StoreConfig struct {
	Prefix       string // Redis key prefix; default "zsync:"
	HistoryCap   int    // records kept per subscription; default 50
	StreamMaxLen int64  // approximate length of the global stream; default 10000
}

func (c StoreConfig) withDefaults() StoreConfig {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.HistoryCap <= 0 {
		c.HistoryCap = defaultHistoryCap
	}
	if c.StreamMaxLen <= 0 {
		c.StreamMaxLen = defaultStreamMaxLen
	}
	return c
}

// OutcomeStore keeps sync outcomes in Redis: the latest record per
// subscription, a capped history per subscription and a capped global stream.
// asynq's own archive is capped and silently trimmed, so this is the record
// operators and the API read.
//
// Records are filed under the Zuora subscription number once the syncer has
// resolved it; the id a task was enqueued with and the Limio id become aliases,
// so Latest and History answer for any id form the service has seen.
type OutcomeStore struct {
	rdb  redis.UniversalClient
	cfg  StoreConfig
	keys keyspace
}

// NewOutcomeStore returns a store on rdb.
func NewOutcomeStore(rdb redis.UniversalClient, cfg StoreConfig) *OutcomeStore {
	cfg = cfg.withDefaults()
	return &OutcomeStore{rdb: rdb, cfg: cfg, keys: keyspace{cfg.Prefix}}
}

// Record stores r as the latest for its subscription, in its history and in
// the stream. A record with no subscription goes to the stream only.
func (s *OutcomeStore) Record(ctx context.Context, r Record) error {
	return s.record(ctx, r, false, nil)
}

// record is Record; resolved says the run read the subscription's number
// from Zuora (r.Subscription is canonical), so no alias lookup is needed.
// also, when not nil, adds the caller's commands to the same pipeline,
// after the record's writes (the caller reads their answers; their errors
// are not the record's).
func (s *OutcomeStore) record(ctx context.Context, r Record, resolved bool, also func(redis.Pipeliner)) error {
	if r.Subscription == "" {
		r.Subscription = r.Key
	}
	if !resolved && r.Subscription != "" && r.Subscription == r.Key {
		// Not resolved by this run (a failure before Zuora answered): file it
		// with the subscription's earlier records if the key is known.
		if canon, err := s.resolve(ctx, r.Key); err != nil {
			return err
		} else if canon != "" {
			r.Subscription = canon
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	// A plain pipeline, not MULTI: the keys may live on different cluster
	// slots, and each write is useful on its own.
	pipe := s.rdb.Pipeline()
	if sub := r.Subscription; sub != "" {
		pipe.Set(ctx, s.keys.latest(sub), b, 0)
		pipe.LPush(ctx, s.keys.history(sub), b)
		pipe.LTrim(ctx, s.keys.history(sub), 0, int64(s.cfg.HistoryCap-1))
		for _, alias := range []string{r.Key, r.LimioID} {
			if alias != "" && alias != sub {
				pipe.Set(ctx, s.keys.alias(alias), sub, 0)
			}
		}
	}
	pipe.XAdd(ctx, &redis.XAddArgs{
		Stream: s.keys.stream(), MaxLen: s.cfg.StreamMaxLen, Approx: true,
		Values: []any{"r", b},
	})
	own := pipe.Len()
	if also != nil {
		also(pipe)
	}
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	for _, c := range cmds[:own] {
		if cerr := c.Err(); cerr != nil {
			return fmt.Errorf("record outcome of %s: %w", r.Subscription, cerr)
		}
	}
	for _, c := range cmds[own:] {
		if c.Err() != nil {
			return nil // one of the caller's commands failed, not the record
		}
	}
	// No command carries it: the pipeline never ran (no connection), and
	// go-redis leaves its commands without an error of their own.
	return fmt.Errorf("record outcome of %s: %w", r.Subscription, err)
}

// RecordSkipped records a callout the ingress dropped by the loop guard.
func (s *OutcomeStore) RecordSkipped(ctx context.Context, key string, trig syncer.Trigger) error {
	return s.Record(ctx, Record{
		Subscription:   key,
		Key:            key,
		Outcome:        syncer.Skipped,
		Reason:         "loop guard: the change was made by Limio",
		At:             time.Now().UTC(),
		Trigger:        trig,
		NotificationID: trig.NotificationID,
	})
}

// Latest returns the last record for id (any id form), or nil, nil when
// nothing was recorded.
func (s *OutcomeStore) Latest(ctx context.Context, id string) (*Record, error) {
	sub, err := s.canonical(ctx, id)
	if err != nil {
		return nil, err
	}
	b, err := s.rdb.Get(ctx, s.keys.latest(sub)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read latest outcome of %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode latest outcome of %s: %w", id, err)
	}
	return &r, nil
}

// History returns up to n records for id, newest first (n <= 0: all kept).
func (s *OutcomeStore) History(ctx context.Context, id string, n int) ([]Record, error) {
	sub, err := s.canonical(ctx, id)
	if err != nil {
		return nil, err
	}
	stop := int64(n - 1)
	if n <= 0 {
		stop = -1
	}
	raw, err := s.rdb.LRange(ctx, s.keys.history(sub), 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("read outcome history of %s: %w", id, err)
	}
	out := make([]Record, 0, len(raw))
	for _, b := range raw {
		var r Record
		if err := json.Unmarshal([]byte(b), &r); err != nil {
			return nil, fmt.Errorf("decode outcome history of %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Stream returns up to n records of every subscription, newest first.
func (s *OutcomeStore) Stream(ctx context.Context, n int) ([]Record, error) {
	if n <= 0 {
		n = 100
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.keys.stream(), "+", "-", int64(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("read outcome stream: %w", err)
	}
	out := make([]Record, 0, len(msgs))
	for _, m := range msgs {
		b, _ := m.Values["r"].(string)
		var r Record
		if err := json.Unmarshal([]byte(b), &r); err != nil {
			return nil, fmt.Errorf("decode outcome stream entry %s: %w", m.ID, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// resolve returns the subscription id is an alias of, or "".
func (s *OutcomeStore) resolve(ctx context.Context, id string) (string, error) {
	sub, err := s.rdb.Get(ctx, s.keys.alias(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", id, err)
	}
	return sub, nil
}

func (s *OutcomeStore) canonical(ctx context.Context, id string) (string, error) {
	sub, err := s.resolve(ctx, id)
	if err != nil || sub == "" {
		return id, err
	}
	return sub, nil
}
