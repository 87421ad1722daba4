package zuora

// HandOffStats reports how many requests of this process wait in the
// hand-off queue and how many leases were handed over so far (tests).
func (l *TenantLimiter) HandOffStats() (waiting int, passed int64) { return l.handoff.stats() }

// ParkStats reports how many leases are parked, how many parked ones
// requests took and how many went back to Redis unused so far (tests).
func (l *TenantLimiter) ParkStats() (parked int, taken, ended int64) {
	l.handoff.mu.Lock()
	defer l.handoff.mu.Unlock()
	return len(l.handoff.parked), l.handoff.taken, l.handoff.ended
}

// QuietStats reports whether the limiter is subscribed to the signals
// channel, whether a hand-off would now skip the script, and how many
// messages it has seen (tests).
func (l *TenantLimiter) QuietStats() (up, sure bool, seen int64) {
	return l.quiet.up.Load(), l.quietOK && l.quiet.sure(), l.quiet.seen.Load()
}

// QuietLost reports how many subscriptions to the signals channel failed
// or ended (tests).
func (l *TenantLimiter) QuietLost() int64 { return l.quiet.lost.Load() }
