package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/syncer"
)

// One callout's Enqueue as the ingress makes it (shared pipelines, retention
// on, a new subscription each time), against one plain asynq Enqueue on the
// same Redis: the Enqueuer's own CPU and allocations per callout.
func BenchmarkEnqueue(b *testing.B) {
	rs := redistest.Start(b)
	rdb := rs.Client(b)
	ctx := context.Background()
	b.Run("enqueuer", func(b *testing.B) {
		client, closePool, err := NewPipelinedClient(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = closePool() })
		cfg := Config{Retention: 24 * time.Hour}.WithDefaults()
		enq := NewEnqueuer(rdb, client, cfg.EnqueueConfig(), zap.NewNop())
		trig := syncer.Trigger{Source: syncer.SourceCallout, EventType: "SubscriptionUpdated", Received: time.Now()}
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n++
			if _, _, err := enq.Enqueue(ctx, fmt.Sprintf("A-S%09d", n), trig, QueueCallouts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("asynq", func(b *testing.B) {
		client := asynq.NewClientFromRedisClient(rdb)
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n++
			if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench:echo", fmt.Appendf(nil, `{"n":%d}`, n))); err != nil {
				b.Fatal(err)
			}
		}
	})
}
