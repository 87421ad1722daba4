package syncer

import "context"

// WriteGuard is the caller's say over each Limio write of a sync (the
// worker passes its subscription lock): BeforeWrite may refuse the write,
// which ends the sync with nothing more written, and AfterWrite is told how
// the write ended (nil: applied), so that a write whose outcome is unknown
// can be waited out. Remember (zsync's own index) and the timeline event's
// outcome are not reported.
type WriteGuard interface {
	BeforeWrite(ctx context.Context) error
	AfterWrite(ctx context.Context, err error)
}

type writeGuardKey struct{}

// WithWriteGuard returns a context whose syncs consult g before each Limio
// write.
func WithWriteGuard(ctx context.Context, g WriteGuard) context.Context {
	return context.WithValue(ctx, writeGuardKey{}, g)
}

func writeGuard(ctx context.Context) WriteGuard {
	if g, ok := ctx.Value(writeGuardKey{}).(WriteGuard); ok {
		return g
	}
	return nopGuard{}
}

type nopGuard struct{}

func (nopGuard) BeforeWrite(context.Context) error { return nil }
func (nopGuard) AfterWrite(context.Context, error) {}
