package zuora

// HandOffStats reports how many requests of this process wait in the
// hand-off queue and how many leases were handed over so far (tests).
func (l *TenantLimiter) HandOffStats() (waiting int, passed int64) { return l.handoff.stats() }
