package syncer

import "strings"

// Config is what the syncer needs to know about the tenant.
type Config struct {
	// IntegrationUserIDs are the Zuora user ids Limio writes with: orders they
	// created are Limio's own and are not synced back (loop guard).
	IntegrationUserIDs []string
	// IntegrationUserNames are the same users by user name or e-mail, as
	// legacy merge fields (<Subscription.CreatedBy>) render the creator.
	IntegrationUserNames []string
	// LoopSources are the Source__c / InitiatedSource__c values Limio stamps on
	// its orders. nil: shop, salesforce; empty: no source check.
	LoopSources []string
	// Offers maps a Zuora productRatePlanId to a Limio offer path
	// (/offers2/…). Optional: without a mapping, data.offers is left alone.
	Offers map[string]string
	// PreviewMonths is how far ahead the schedule of an evergreen subscription
	// (no term end) reaches. Default 12.
	PreviewMonths int
}

// DefaultLoopSources are the order sources Limio uses for its own orders.
var DefaultLoopSources = []string{"shop", "salesforce"}

func (c Config) withDefaults() Config {
	if c.LoopSources == nil { // nil: the default; empty: no source check
		c.LoopSources = DefaultLoopSources
	}
	if c.PreviewMonths <= 0 {
		c.PreviewMonths = 12
	}
	return c
}

// containsFold reports whether v (trimmed, non-empty) is in list, ignoring case.
func containsFold(list []string, v string) bool {
	v = strings.TrimSpace(v)
	if v == "" {
		return false
	}
	for _, s := range list {
		if strings.EqualFold(strings.TrimSpace(s), v) {
			return true
		}
	}
	return false
}
