package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// ErrRedisDataLost is the cause of the cancellation of the syncs running
// when Redis was found to have lost its data: their locks are gone with it,
// so another sync may be writing the same subscription. It wraps
// ErrLockLost.
var ErrRedisDataLost = fmt.Errorf("redis lost its data: %w", ErrLockLost)

const defaultLossCheck = 2 * time.Second

// LossWatch notices that Redis lost its data: a restart without
// persistence, a failover to an empty replica, a flush. Every zsync process
// runs one. Each keeps a marker key (<prefix>redis:marker) that exists from
// the first process's start; when it is gone, or holds another value than
// the one this process saw, the data went with it. The process that finds
// it gone writes a new one (and the others adopt it). Redis's run id is
// logged, to tell a restart from a flush.
//
// A marker missing when the process starts can't be told from a first
// start: it is created without an alarm (docs/operations.md says what to do
// when Redis lost data while no zsync process ran).
type LossWatch struct {
	rdb      redis.UniversalClient
	key      string
	interval time.Duration
	log      *zap.Logger
	onLoss   []func(ctx context.Context, marker string)
	metrics  LossMetrics

	seen  string // the marker this process last saw; "" before the first check
	runID string
}

// LossMetrics counts Redis data losses a process noticed. A Metrics passed
// with WithMetrics that also implements it receives them.
type LossMetrics interface {
	RedisDataLoss()
}

// NewLossWatch returns a watch over rdb's data; interval <= 0 checks every 2s.
func NewLossWatch(rdb redis.UniversalClient, prefix string, interval time.Duration, logger *zap.Logger, opts ...Option) *LossWatch {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if interval <= 0 {
		interval = defaultLossCheck
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	w := &LossWatch{rdb: rdb, key: prefix + "redis:marker", interval: interval, log: logger.Named("redis-watch")}
	if m, ok := applyOptions(opts).metrics.(LossMetrics); ok {
		w.metrics = m
	}
	return w
}

// OnLoss adds f to what runs when a loss is noticed, with the new marker
// (the same in every process: an id for the loss). Call before Run.
func (w *LossWatch) OnLoss(f func(ctx context.Context, marker string)) {
	w.onLoss = append(w.onLoss, f)
}

// Run checks until ctx ends.
func (w *LossWatch) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check runs one check and reports whether it found a loss. Redis errors
// are no verdict: the next check tries again.
func (w *LossWatch) Check(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, w.interval)
	defer cancel()
	runID := w.serverRunID(cctx)
	cur, err := w.rdb.Get(cctx, w.key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false
	}
	if errors.Is(err, redis.Nil) {
		cur, err = w.create(cctx)
		if err != nil {
			return false
		}
		if w.seen == "" {
			w.seen, w.runID = cur, runID
			w.log.Info("redis marker created", zap.String("marker", cur), zap.String("run_id", runID))
			return false
		}
	}
	if w.seen == "" {
		w.seen, w.runID = cur, runID
		return false
	}
	if runID != "" && w.runID != "" && runID != w.runID && cur == w.seen {
		w.log.Info("redis restarted with its data", zap.String("run_id", runID), zap.String("previous_run_id", w.runID))
	}
	if runID != "" {
		w.runID = runID
	}
	if cur == w.seen {
		return false
	}
	prev := w.seen
	w.seen = cur
	if w.metrics != nil {
		w.metrics.RedisDataLoss()
	}
	w.log.Error("redis lost its data: stopping running syncs, enqueueing a catch-up sweep",
		zap.String("marker", cur), zap.String("previous_marker", prev), zap.String("run_id", runID))
	for _, f := range w.onLoss {
		f(ctx, cur)
	}
	return true
}

// create writes a new marker unless another process did first, and returns
// the one Redis holds.
func (w *LossWatch) create(ctx context.Context) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	mine := hex.EncodeToString(b[:]) + "-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	ok, err := w.rdb.SetNX(ctx, w.key, mine, 0).Result()
	if err != nil {
		return "", err
	}
	if ok {
		return mine, nil
	}
	return w.rdb.Get(ctx, w.key).Result()
}

// serverRunID is Redis's run_id (changes on every restart), "" when it
// can't be read (a cluster client asks any node).
func (w *LossWatch) serverRunID(ctx context.Context) string {
	c, ok := w.rdb.(*redis.Client)
	if !ok {
		return ""
	}
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v
		}
	}
	return ""
}
