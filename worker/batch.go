package worker

import "sync"

// batcher hands items to send in batches, opportunistically: a batch takes
// every item waiting when it starts, and a lone item goes at once, so nothing
// waits for a batch to fill. At most maxInFlight batches are out at a time.
// Callers learn their results through their items (send must answer each).
// Used for epoch claims (epoch.go) and the ingress's script calls
// (autopipe.go): under a burst, one Redis write and read serve many callouts.
type batcher[T any] struct {
	send        func([]T)
	maxInFlight int

	mu       sync.Mutex
	pending  []T
	inFlight int
}

// add queues item for the next batch.
func (b *batcher[T]) add(item T) {
	b.mu.Lock()
	b.pending = append(b.pending, item)
	if b.inFlight < max(b.maxInFlight, 1) {
		b.inFlight++
		go b.loop()
	}
	b.mu.Unlock()
}

// loop sends the waiting items, batch after batch, until none are left.
func (b *batcher[T]) loop() {
	for {
		b.mu.Lock()
		batch := b.pending
		b.pending = nil
		if len(batch) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.send(batch)
	}
}
