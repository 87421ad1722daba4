package limio

import "sync"

// localIndexSize bounds the in-process copy of the index: some 100 bytes an
// entry, so a few MiB, and a tenant's active subscriptions mostly fit.
const localIndexSize = 50000

// localIndex is an in-process copy of the index's entries in front of Redis:
// a hit costs no round trip. It can't make a sync wrong: Resolve verifies
// every hit against Limio (and forgets a stale one here and in Redis), which
// is all the Redis index is trusted for too. When full, an arbitrary entry
// makes room (Go's map order), which costs at most a Redis read later.
type localIndex struct {
	mu sync.RWMutex
	m  map[string]string
}

func (l *localIndex) get(key string) (string, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	v, ok := l.m[key]
	return v, ok
}

func (l *localIndex) put(key, subID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]string)
	}
	if _, ok := l.m[key]; !ok && len(l.m) >= localIndexSize {
		for k := range l.m {
			delete(l.m, k)
			break
		}
	}
	l.m[key] = subID
}

func (l *localIndex) drop(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}
