package logging

import (
	"context"

	"go.uber.org/zap"
)

type ctxKey struct{}

// IntoContext returns ctx carrying l. The worker puts a task's logger (with
// its task_id) there, so that what runs below it, the syncer, logs lines an
// operator can tie to the task.
func IntoContext(ctx context.Context, l *zap.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// FromContext is the logger ctx carries, or fallback when it carries none.
func FromContext(ctx context.Context, fallback *zap.Logger) *zap.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*zap.Logger); ok && l != nil {
		return l
	}
	return fallback
}
