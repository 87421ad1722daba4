package syncer

import (
	"strings"

	"github.com/zsync/zsync/zuora"
)

// loopGuard is the loop guard (docs/design.md, reconciliation rule 8): a callout for a change Limio
// made itself (an order from the shop or Limio for Salesforce, or by the
// integration user) must not be synced back. Only callouts are guarded; an
// operator's manual sync, a bulk re-sync or the sweep always run. order is the
// order the callout named, when it had to be read (nil otherwise).
func loopGuard(cfg Config, trig Trigger, order *zuora.Order) (skip bool, reason string) {
	if trig.Source != SourceCallout {
		return false, ""
	}
	cfg = cfg.withDefaults()
	switch CalloutLoop(cfg, trig) {
	case LoopOrderSource:
		return true, "order Source__c " + trig.OrderSource
	case LoopInitiatedSource:
		return true, "order InitiatedSource__c " + trig.InitiatedSource
	case LoopCreatedBy:
		return true, "created by integration user " + trig.CreatedByID
	}
	if order == nil {
		return false, ""
	}
	if containsFold(cfg.IntegrationUserIDs, order.CreatedBy) {
		return true, "order " + order.OrderNumber + " created by integration user " + order.CreatedBy
	}
	for _, name := range []string{"Source__c", "InitiatedSource__c"} {
		if v := customField(order.CustomFields, name); containsFold(cfg.LoopSources, v) {
			return true, "order " + order.OrderNumber + " " + name + " " + v
		}
	}
	return false, ""
}

// The callout fields that can show a change Limio made itself (CalloutLoop).
const (
	LoopOrderSource     = "Source__c"
	LoopInitiatedSource = "InitiatedSource__c"
	LoopCreatedBy       = "CreatedById"
)

// CalloutLoop is the part of the loop guard the trigger's own fields decide,
// whatever its source: the field (LoopOrderSource, LoopInitiatedSource or
// LoopCreatedBy) that names one of cfg's loop sources or integration users,
// or "" when none does. The ingress applies it to a callout body before
// enqueueing; loopGuard applies it again in the worker, then reads the order.
func CalloutLoop(cfg Config, trig Trigger) string {
	cfg = cfg.withDefaults()
	switch {
	case containsFold(cfg.LoopSources, trig.OrderSource):
		return LoopOrderSource
	case containsFold(cfg.LoopSources, trig.InitiatedSource):
		return LoopInitiatedSource
	case containsFold(cfg.IntegrationUserIDs, trig.CreatedByID), containsFold(cfg.IntegrationUserNames, trig.CreatedByID):
		// A callout's creator may be an id or, from legacy merge fields, a
		// user name or e-mail.
		return LoopCreatedBy
	}
	return ""
}

// customField reads a custom field whatever the case of its name (tenants
// differ: Source__c, source__c).
func customField(cf zuora.CustomFields, name string) string {
	if v := cf.Get(name); v != "" {
		return v
	}
	for k := range cf {
		if strings.EqualFold(k, name) {
			return cf.Get(k)
		}
	}
	return ""
}

// needsOrder reports whether the guard needs the order read from Zuora: a
// callout that named an order but carried none of the fields that decide.
func needsOrder(trig Trigger) bool {
	return trig.Source == SourceCallout && trig.OrderNumber != "" &&
		trig.OrderSource == "" && trig.InitiatedSource == "" && trig.CreatedByID == ""
}
