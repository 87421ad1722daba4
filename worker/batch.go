package worker

import "sync"

// batcher hands items to send in batches, opportunistically: a batch takes
// every item waiting when it starts, and a lone item goes at once, so nothing
// waits for a batch to fill. At most maxInFlight batches are out at a time.
// Callers learn their results through their items (send must answer each,
// and must not keep the batch slice, which is reused).
// Used for epoch claims (epoch.go) and the ingress's script calls
// (autopipe.go): under a burst, one Redis write and read serve many callouts.
type batcher[T any] struct {
	send        func([]T)
	maxInFlight int

	mu       sync.Mutex
	pending  []T
	spare    []T // a sent batch's slice, for the next pending
	inFlight int
}

// add queues item for the next batch. When a batch may start, the caller
// sends it itself (its own item and any waiting) and add returns once it is
// answered: the caller would only wait for that answer anyway, and a lone
// item then costs no goroutine and no hand-off. Items that came meanwhile go
// on in a goroutine, so no caller waits for a batch that does not hold its
// item.
func (b *batcher[T]) add(item T) {
	b.mu.Lock()
	b.pending = append(b.pending, item)
	if b.inFlight >= max(b.maxInFlight, 1) {
		b.mu.Unlock()
		return
	}
	b.inFlight++
	batch := b.take()
	b.mu.Unlock()
	b.sendOwn(batch)
	b.mu.Lock()
	b.keep(batch)
	more := len(b.pending) > 0
	if !more {
		b.inFlight--
	}
	b.mu.Unlock()
	if more {
		go b.loop() // keeps the slot
	}
}

// sendOwn sends a batch on a caller's goroutine. A panic in send must not
// be recovered there (an HTTP server's recovery): the slot would stay taken
// and every later caller wait forever. It crashes the process, as it did
// when every batch went in a goroutine.
func (b *batcher[T]) sendOwn(batch []T) {
	defer func() {
		if r := recover(); r != nil {
			go panic(r)
			select {}
		}
	}()
	b.send(batch)
}

// loop sends the waiting items, batch after batch, until none are left.
func (b *batcher[T]) loop() {
	b.mu.Lock()
	for len(b.pending) > 0 {
		batch := b.take()
		b.mu.Unlock()
		b.send(batch)
		b.mu.Lock()
		b.keep(batch)
	}
	b.inFlight--
	b.mu.Unlock()
}

// take returns the waiting items (b.mu held).
func (b *batcher[T]) take() []T {
	batch := b.pending
	b.pending, b.spare = b.spare, nil
	return batch
}

// maxSpare bounds the slice kept for reuse, so that one burst doesn't pin a
// large one.
const maxSpare = 1024

// keep keeps a sent batch's slice for a later batch to fill (b.mu held).
func (b *batcher[T]) keep(batch []T) {
	clear(batch) // the items are answered: don't keep them alive
	if b.spare == nil && cap(batch) <= maxSpare {
		b.spare = batch[:0]
	}
}
