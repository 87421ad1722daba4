package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/syncer"
)

// Account fan-out: a contact or account edit in Zuora names an account, not a
// subscription, so it syncs every subscription of that account. The ingress
// (or the sweep) stores one fan-out task per account and epoch, exactly as it
// stores a sync task per subscription and epoch: a burst of edits on one
// account collapses into one fan-out, and the 200 answers once that task is
// in Redis. The task lists the account's subscriptions in Zuora and enqueues
// each through the same epoch dedup as any callout; asynq retries it after a
// failure and recovers it from a crashed worker, and running it twice only
// coalesces, so a fan-out interrupted half-way is finished, never dropped.

// TaskTypeAccount is the asynq type of an account fan-out task.
const TaskTypeAccount = "zsync:account"

// accountKeyPrefix files an account's epoch, task ids and outcomes apart from
// subscription keys (which never contain ':').
const accountKeyPrefix = "account:"

// AccountKey is the key an account's fan-out is filed under: its epoch, its
// task ids and its outcomes (GET /v1/accounts/{account}/sync).
func AccountKey(account string) string { return accountKeyPrefix + account }

// accountRE: Zuora account numbers (A00000001, or a tenant's own format) and
// 32-hex account ids. The account reaches a Zuora URL.
var accountRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidAccount reports whether s can be an account number or id.
func ValidAccount(s string) bool { return accountRE.MatchString(s) }

// FannedOut is the outcome of an account fan-out that enqueued its
// subscriptions (each sync records its own outcome).
const FannedOut syncer.Result = "fanned_out"

// defaultFanoutCalloutMax: an account's first subscriptions sync at callout
// priority, the rest in the bulk queue, so an account with thousands of
// subscriptions can't hold up other callouts.
const defaultFanoutCalloutMax = 50

const fanoutBatch = 100

// EnqueueAccount asks for a sync of every subscription of account (a number
// or an id): it stores the account's fan-out task in queue, or coalesces into
// the one that has not started yet. Statuses and errors are Enqueue's.
func (e *Enqueuer) EnqueueAccount(ctx context.Context, account string, trig syncer.Trigger, queue string) (EnqueueStatus, string, error) {
	if !ValidAccount(account) {
		return "", "", fmt.Errorf("%w: account %q", errInvalidKey, account)
	}
	if queue == "" {
		queue = QueueCallouts
	}
	key := AccountKey(account)
	b, err := json.Marshal(syncPayload{Key: key, Trigger: withoutOrder(trig)})
	if err != nil {
		return "", "", fmt.Errorf("encode account task: %w", err)
	}
	c, err := e.claims.claim(ctx, key)
	if err != nil {
		return "", "", err
	}
	return e.store(ctx, asynq.NewTask(TaskTypeAccount, b), key, c, queue, "")
}

// AccountLister lists an account's subscriptions (*zuora.Client). An unknown
// account is an error wrapping upstream.ErrNotFound.
type AccountLister interface {
	AccountSubscriptions(ctx context.Context, account string, fn func(number string) error) error
}

// FanoutConfig configures an AccountFanout. Zero values take the defaults.
type FanoutConfig struct {
	Prefix string // Redis key prefix; default "zsync:"
	// CalloutMax is how many of an account's subscriptions are enqueued in
	// the fan-out's own queue; the rest go to the bulk queue. Default 50.
	CalloutMax int
}

// AccountFanout runs account fan-out tasks. Register it with
// Server.Handle(TaskTypeAccount, f).
type AccountFanout struct {
	lister  AccountLister
	enq     *Enqueuer
	store   *OutcomeStore
	rdb     redis.UniversalClient
	keys    keyspace
	cfg     FanoutConfig
	log     *zap.Logger
	metrics Metrics
}

// NewAccountFanout returns the fan-out handler. enq, store and rdb must reach
// one Redis.
func NewAccountFanout(lister AccountLister, enq *Enqueuer, store *OutcomeStore, rdb redis.UniversalClient,
	cfg FanoutConfig, logger *zap.Logger, opts ...Option) *AccountFanout {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.CalloutMax <= 0 {
		cfg.CalloutMax = defaultFanoutCalloutMax
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	o := applyOptions(opts)
	return &AccountFanout{lister: lister, enq: enq, store: store, rdb: rdb, keys: keyspace{cfg.Prefix}, cfg: cfg,
		log: logger.Named("fanout"), metrics: o.metrics}
}

// fanout is what one run did.
type fanout struct {
	enqueued, coalesced int
}

// ProcessTask implements asynq.Handler: one fan-out, recorded under the
// account's key.
func (f *AccountFanout) ProcessTask(ctx context.Context, t *asynq.Task) error {
	start := time.Now()
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	key, epoch, ok := taskEpoch(id, t.Payload())
	p, perr := decodePayload(t.Payload())
	account, isAccount := strings.CutPrefix(p.Key, accountKeyPrefix)
	if perr != nil || !isAccount || !ValidAccount(account) {
		if ok {
			_, _ = runAdvance(context.WithoutCancel(ctx), f.rdb, f.keys, key, epoch, true)
		}
		err := fmt.Errorf("account task %s: unreadable payload: %v: %w", id, perr, asynq.SkipRetry)
		f.log.Error("account fan-out", zap.String("task_id", id), zap.Error(err))
		return err
	}
	// Close the epoch before reading Zuora, as a sync does: an edit from now
	// on makes a new fan-out, which will list what Zuora has then.
	if _, err := runAdvance(ctx, f.rdb, f.keys, key, epoch, false); err != nil {
		return err
	}
	res, err := f.run(ctx, account, p.Trigger, queue)

	rec := Record{Subscription: key, Key: key, At: start.UTC(), DurationMS: time.Since(start).Milliseconds(),
		TaskID: id, Queue: queue, Attempt: retried, Epoch: epoch, Trigger: p.Trigger, NotificationID: p.Trigger.NotificationID,
		Reason: fmt.Sprintf("%d subscriptions enqueued, %d coalesced into waiting syncs", res.enqueued, res.coalesced)}
	var ret error
	switch class := classify(err); {
	case err == nil:
		rec.Outcome = FannedOut
	case errors.Is(err, upstream.ErrNotFound):
		// Zuora doesn't know the account: nothing to sync, nothing to retry.
		rec.Outcome, rec.Error, rec.Reason = syncer.NotFound, err.Error(), "zuora has no account "+account
	case class == classThrottled:
		return err // waiting for the limit is not an outcome
	default:
		rec.Outcome, rec.Error = syncer.Failed, err.Error()
		rec.Archived = archiveNow(class, retried) || retried >= maxRetry
		ret = err
		if archiveNow(class, retried) {
			ret = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := f.store.Record(rctx, rec); serr != nil {
		f.log.Warn("record fan-out outcome", zap.String("account", account), zap.Error(serr))
	}
	f.metrics.TaskDone(queue, rec.Outcome, time.Since(start))
	f.log.Info("account fan-out", zap.String("account", account), zap.String("task_id", id),
		zap.String("outcome", string(rec.Outcome)), zap.Int("enqueued", res.enqueued), zap.Int("coalesced", res.coalesced),
		zap.Int("attempt", retried), zap.Error(err))
	return ret
}

// run lists the account's subscriptions and enqueues them in batches: the
// first CalloutMax in queue, the rest in the bulk queue.
func (f *AccountFanout) run(ctx context.Context, account string, trig syncer.Trigger, queue string) (fanout, error) {
	var res fanout
	var batch []string
	n := 0
	flush := func(q string) error {
		if len(batch) == 0 {
			return nil
		}
		out, err := f.enq.enqueueBatch(ctx, batch, trig, q, "")
		for _, r := range out {
			switch {
			case r.Err != nil && errors.Is(r.Err, errInvalidKey):
				f.log.Warn("account fan-out: skipping an invalid subscription number",
					zap.String("account", account), zap.String("subscription", r.Key))
			case r.Status == Coalesced:
				res.coalesced++
			case r.Status == Enqueued:
				res.enqueued++
			}
		}
		batch = batch[:0]
		return err
	}
	err := f.lister.AccountSubscriptions(ctx, account, func(number string) error {
		n++
		batch = append(batch, number)
		switch {
		case n == f.cfg.CalloutMax:
			return flush(queue) // the last of the first CalloutMax
		case n < f.cfg.CalloutMax:
			if len(batch) >= fanoutBatch {
				return flush(queue)
			}
		default:
			if len(batch) >= fanoutBatch {
				return flush(QueueBulk)
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("list subscriptions of account %s: %w", account, err)
	}
	q := queue
	if n > f.cfg.CalloutMax {
		q = QueueBulk
	}
	return res, flush(q)
}
