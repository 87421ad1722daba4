// Package syncer reconciles a Limio subscription with its Zuora subscription.
// Plan is pure (Zuora state + Limio state + now → changes); Syncer reads both
// systems, plans, and applies the plan idempotently. It knows nothing of
// Redis or asynq: the worker calls Sync and records the Outcome.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/zsync/zsync/internal/logging"
	"github.com/zsync/zsync/internal/subid"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

// Zuora is what the syncer reads from Zuora (*zuora.Client).
type Zuora interface {
	GetSubscription(ctx context.Context, key string) (*zuora.Subscription, error)
	GetAccount(ctx context.Context, key string) (*zuora.Account, error)
	BillingPreview(ctx context.Context, req zuora.BillingPreviewRequest) (*zuora.BillingPreview, error)
	GetOrder(ctx context.Context, orderNumber string) (*zuora.Order, error)
}

// Limio is what the syncer reads from and writes to Limio (*limio.Client).
type Limio interface {
	GetSubscription(ctx context.Context, id string) (*limio.Subscription, error)
	// Resolve finds a subscription by sub-… id, reference or Zuora number.
	Resolve(ctx context.Context, key string) (*limio.Subscription, error)
	GetRelated(ctx context.Context, subID string) (*limio.Related, error)
	// GetCustomer reads a customer; read only after an owner transfer.
	GetCustomer(ctx context.Context, id string) (*limio.Customer, error)
	Update(ctx context.Context, pathType, id string, p limio.Patch) error
	Create(ctx context.Context, pathType, id string, obj any) error
	Remember(ctx context.Context, key, subID string) error
	PostTimeline(ctx context.Context, ev limio.TimelineEvent) error
}

// Syncer runs syncs. It is safe for concurrent use; the caller serializes
// syncs of one subscription (the worker's lock).
type Syncer struct {
	cfg   Config
	zuora Zuora
	limio Limio
	log   *zap.Logger
	now   func() time.Time
}

// Option configures a Syncer.
type Option func(*Syncer)

// WithClock sets the clock that decides "today" (default time.Now in UTC).
func WithClock(now func() time.Time) Option { return func(s *Syncer) { s.now = now } }

// New returns a Syncer.
func New(cfg Config, z Zuora, l Limio, logger *zap.Logger, opts ...Option) *Syncer {
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &Syncer{
		cfg: cfg.withDefaults(), zuora: z, limio: l, log: logger.Named("syncer"),
		now: func() time.Time { return time.Now().UTC() },
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Sync reconciles the Limio subscription for key (a Zuora subscription number,
// a sub-… id or a Limio reference) with Zuora. It returns an Outcome with
// Result Created, Updated, Unchanged, Skipped (loop guard) or NotFound; on an
// error the Outcome says what was known and Result is empty (the worker
// records failed). A NotFound outcome comes with an error wrapping ErrNotFound
// that IsPermanent. Upstream errors are returned wrapped, classified by
// upstream.Error.
func (s *Syncer) Sync(ctx context.Context, key string, trig Trigger) (Outcome, error) {
	out := Outcome{Subscription: key}
	var order *zuora.Order
	if needsOrder(trig) {
		o, err := s.zuora.GetOrder(ctx, trig.OrderNumber)
		switch {
		case errors.Is(err, upstream.ErrNotFound):
			// No order to judge by: sync. Writing Limio never makes an order,
			// so this can't loop.
		case err != nil:
			return out, fmt.Errorf("loop guard: order %s: %w", trig.OrderNumber, err)
		default:
			order = o
		}
	}
	if skip, reason := loopGuard(s.cfg, trig, order); skip {
		out.Result, out.Reason = Skipped, reason
		return out, nil
	}
	cs, out, err := s.plan(ctx, key)
	if err != nil || cs == nil {
		return out, err
	}
	if err := s.apply(ctx, cs); err != nil {
		return out, err
	}
	out.Result, out.Changes = cs.Result, cs.Changes
	s.logger(ctx).Debug("synced", zap.String("subscription", out.Subscription), zap.String("limio_id", out.LimioID),
		zap.String("outcome", string(out.Result)), zap.Int("changes", len(out.Changes)))
	return out, nil
}

// logger is the logger of the task ctx belongs to (internal/logging
// IntoContext: the worker's, with the task id) when there is one, so the
// syncer's lines name their task; else the syncer's own.
func (s *Syncer) logger(ctx context.Context) *zap.Logger {
	if l := logging.FromContext(ctx, nil); l != nil {
		return l.Named("syncer")
	}
	return s.log
}

// DryRun plans a sync of key and never writes: the Outcome says what Sync
// would do now (Result Created, Updated, Unchanged or NotFound).
func (s *Syncer) DryRun(ctx context.Context, key string) (Outcome, error) {
	cs, out, err := s.plan(ctx, key)
	if err != nil || cs == nil {
		return out, err
	}
	out.Result, out.Changes = cs.Result, cs.Changes
	return out, nil
}

// plan reads both systems and plans. A nil Changeset with a nil error can't
// happen; with NotFound the Outcome is filled and the error is permanent.
func (s *Syncer) plan(ctx context.Context, key string) (*Changeset, Outcome, error) {
	out := Outcome{Subscription: key}
	st, err := s.read(ctx, key)
	if st != nil {
		out.Subscription = st.number
		if st.l.Subscription != nil {
			out.LimioID = st.l.Subscription.ID
		}
	}
	if err != nil {
		if ErrorResult(err) == NotFound {
			out.Result, out.Reason = NotFound, err.Error()
		}
		return nil, out, err
	}
	cs, err := Plan(s.cfg, st.z, st.l, s.now())
	if err != nil {
		return nil, out, fmt.Errorf("sync %s: %w", key, err)
	}
	out.LimioID = cs.LimioID
	if st.found {
		cs.remember = st.number // Resolve missed it: repair the index
	}
	return cs, out, nil
}

// state is what one sync read.
type state struct {
	number string // Zuora subscription number
	z      ZuoraState
	l      LimioState
	found  bool // the Limio subscription was found by its deterministic id, not by Resolve
}

// read resolves key and reads fresh state: the Zuora subscription, then its
// account and billing preview together (3 Zuora reads), and Limio's
// subscription and related objects.
func (s *Syncer) read(ctx context.Context, key string) (*state, error) {
	st := &state{number: key}
	var zs *zuora.Subscription
	if subid.ZuoraNumber(key) {
		// Both sides know the key: ask them at once.
		var g errgroup.Group
		var zerr error
		g.Go(func() error { zs, zerr = s.zuora.GetSubscription(ctx, key); return nil })
		g.Go(func() error {
			var err error
			st.l.Subscription, st.found, err = s.resolveNumber(ctx, key)
			return err
		})
		if err := g.Wait(); err != nil {
			return st, err
		}
		if zerr != nil {
			return st, zuoraErr(key, zerr)
		}
	} else {
		ls, err := s.limio.Resolve(ctx, key)
		switch {
		case errors.Is(err, upstream.ErrNotFound):
			if strings.HasPrefix(key, "sub-") {
				return st, Permanent(fmt.Errorf("limio %s: %w (%w)", key, ErrNotFound, err))
			}
			// Maybe a Zuora number all the same (Limio sends its reference
			// as the number of the subscriptions it creates): Zuora decides.
			if ls, err = s.createdID(ctx, key); err != nil {
				return st, err
			}
			st.found = ls != nil
		case err != nil:
			return st, fmt.Errorf("limio resolve %s: %w", key, err)
		}
		st.l.Subscription = ls
		if ls != nil {
			st.number = zuoraNumber(ls)
			if st.number == "" {
				return st, Permanent(fmt.Errorf("limio %s has no zuora subscription number", ls.ID))
			}
		}
		if zs, err = s.zuora.GetSubscription(ctx, st.number); err != nil {
			return st, zuoraErr(st.number, err)
		}
	}
	st.number = zs.SubscriptionNumber
	st.z.Subscription = zs

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		acc, err := s.zuora.GetAccount(gctx, firstNonEmpty(zs.AccountNumber, zs.AccountID))
		if errors.Is(err, upstream.ErrNotFound) {
			// The subscription exists, its account doesn't: bad data, not a
			// missing subscription (%v keeps it from reading as not found).
			return Permanent(fmt.Errorf("zuora account %s of %s: %v", zs.AccountNumber, zs.SubscriptionNumber, err))
		}
		if err != nil {
			return fmt.Errorf("zuora account %s: %w", zs.AccountNumber, err)
		}
		st.z.Account = acc
		return nil
	})
	if owner, ok := invoiceOwner(zs); ok {
		g.Go(func() error {
			acc, err := s.zuora.GetAccount(gctx, owner)
			if errors.Is(err, upstream.ErrNotFound) {
				return Permanent(fmt.Errorf("zuora invoice owner account %s of %s: %v", owner, zs.SubscriptionNumber, err))
			}
			if err != nil {
				return fmt.Errorf("zuora invoice owner account %s: %w", owner, err)
			}
			st.z.InvoiceOwner = acc
			return nil
		})
	}
	if req, ok := s.previewRequest(zs); ok {
		g.Go(func() error {
			bp, err := s.zuora.BillingPreview(gctx, req)
			if err != nil {
				return fmt.Errorf("zuora billing preview %s: %w", zs.AccountNumber, err)
			}
			for _, it := range bp.InvoiceItems {
				if strings.EqualFold(firstNonEmpty(it.SubscriptionNumber, it.SubscriptionName), zs.SubscriptionNumber) {
					st.z.Preview = append(st.z.Preview, it)
				}
			}
			for _, it := range bp.CreditMemoItems {
				if strings.EqualFold(firstNonEmpty(it.SubscriptionNumber, it.SubscriptionName), zs.SubscriptionNumber) {
					st.z.Credits = append(st.z.Credits, it)
				}
			}
			return nil
		})
	}
	if ls := st.l.Subscription; OwnerTransferred(ls, zs) {
		// The subscription moved to another account: read the customer
		// zsync keeps for that account, to re-link to (or create).
		g.Go(func() error {
			cu, err := s.limio.GetCustomer(gctx, limio.NewID("cus", zs.AccountNumber))
			switch {
			case errors.Is(err, upstream.ErrNotFound):
			case err != nil:
				return fmt.Errorf("limio customer of account %s: %w", zs.AccountNumber, err)
			default:
				st.l.AccountCustomer = cu
			}
			return nil
		})
	}
	if ls := st.l.Subscription; ls != nil {
		g.Go(func() error {
			rel, err := s.limio.GetRelated(gctx, ls.ID)
			if err != nil {
				return fmt.Errorf("limio related %s: %w", ls.ID, err)
			}
			if rel != nil {
				st.l.Related = *rel
			}
			return nil
		})
	}
	return st, g.Wait()
}

// resolveNumber finds the Limio subscription of a Zuora number: through
// Resolve, then at the id a sync would have created it under (a crash between
// the create and Remember). found says it took the second way. Unknown is
// (nil, false, nil).
func (s *Syncer) resolveNumber(ctx context.Context, number string) (*limio.Subscription, bool, error) {
	ls, err := s.limio.Resolve(ctx, number)
	if err == nil {
		return ls, false, nil
	}
	if !errors.Is(err, upstream.ErrNotFound) {
		return nil, false, fmt.Errorf("limio resolve %s: %w", number, err)
	}
	ls, err = s.createdID(ctx, number)
	return ls, ls != nil, err
}

// createdID reads the subscription a sync creates for a Zuora number; nil
// when there is none.
func (s *Syncer) createdID(ctx context.Context, number string) (*limio.Subscription, error) {
	ls, err := s.limio.GetSubscription(ctx, limio.NewID("sub", number))
	switch {
	case errors.Is(err, upstream.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("limio subscription %s: %w", number, err)
	}
	return ls, nil
}

// previewRequest asks for the charges up to the term end, or PreviewMonths
// ahead for an evergreen subscription. No request when that is already past.
func (s *Syncer) previewRequest(zs *zuora.Subscription) (zuora.BillingPreviewRequest, bool) {
	now := s.now()
	// The preview is of the account Zuora invoices: the invoice owner when
	// another account pays for the subscription, else the subscription's own.
	req := zuora.BillingPreviewRequest{AccountNumber: zs.AccountNumber, AccountID: zs.AccountID}
	if zs.InvoiceOwnerAccountNumber != "" || zs.InvoiceOwnerAccountID != "" {
		req = zuora.BillingPreviewRequest{AccountNumber: zs.InvoiceOwnerAccountNumber, AccountID: zs.InvoiceOwnerAccountID}
	}
	if req.AccountNumber != "" {
		req.AccountID = ""
	}
	if end := wantTermEnd(zs); end != nil {
		req.TargetDate = *end
	} else {
		req.TargetDate = now.AddDate(0, s.cfg.PreviewMonths, 0).Format(dateLayout)
		req.IncludingEvergreenSubscription = true
	}
	return req, req.TargetDate >= now.Format(dateLayout)
}

// invoiceOwner is the key of the account that pays for zs when it is not the
// subscription's own account.
func invoiceOwner(zs *zuora.Subscription) (string, bool) {
	switch {
	case zs.InvoiceOwnerAccountNumber != "":
		return zs.InvoiceOwnerAccountNumber, !strings.EqualFold(zs.InvoiceOwnerAccountNumber, zs.AccountNumber)
	case zs.InvoiceOwnerAccountID != "":
		return zs.InvoiceOwnerAccountID, zs.InvoiceOwnerAccountID != zs.AccountID
	}
	return "", false
}

func zuoraErr(key string, err error) error {
	if errors.Is(err, upstream.ErrNotFound) {
		return Permanent(fmt.Errorf("zuora %s: %w (%w)", key, ErrNotFound, err))
	}
	return fmt.Errorf("zuora subscription %s: %w", key, err)
}

// Canonical is the Zuora subscription number behind key (a Zuora number, a
// sub-… id or a Limio reference), so the worker locks a subscription under
// one name whatever id a sync was requested with. An id Limio doesn't know
// names itself. It costs a Limio lookup only for keys that aren't Zuora
// numbers.
func (s *Syncer) Canonical(ctx context.Context, key string) (string, error) {
	if subid.ZuoraNumber(key) {
		return key, nil
	}
	ls, err := s.limio.Resolve(ctx, key)
	switch {
	case errors.Is(err, upstream.ErrNotFound):
		return key, nil
	case err != nil:
		return "", fmt.Errorf("limio resolve %s: %w", key, err)
	}
	if n := zuoraNumber(ls); n != "" {
		return n, nil
	}
	return key, nil
}

// zuoraNumber is the Zuora subscription a Limio subscription mirrors: data.zuora,
// else its reference (Limio sends its reference as the Zuora number).
func zuoraNumber(ls *limio.Subscription) string {
	if ls.Data.Zuora != nil && ls.Data.Zuora.SubscriptionNumber != "" {
		return ls.Data.Zuora.SubscriptionNumber
	}
	return firstNonEmpty(ls.Reference, ls.Name)
}
