package limio

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// This file is the field mapping: the object path types zsync touches, the
// field paths it writes (docs/design.md "Limio's API as zsync assumes it") and the shape
// of a partial PUT. Limio's own schemas are only partly public (term and
// auto-renew names were observed by people who used the API, not
// documented), so an adopter whose tenant stores a value elsewhere
// changes the constant here and nothing else.

// Path types of the Objects API (/api/objects/limio/{pathType}/{id}).
const (
	PathSubscriptions = "subscriptions"
	PathCustomers     = "customers"
	PathAddress       = "address" // singular in Limio's own list
	PathSchedules     = "schedules"
	PathEvents        = "events"
)

// pathTypes are the path types Limio documents for GET and PUT (Limio's Objects
// API documentation), with the record_type objects of that type carry where
// zsync knows it; anything else is refused before a request is built.
var pathTypes = map[string]string{
	"orders": "order", "customers": RecordCustomer, "subscriptions": RecordSubscription, "identities": "identity",
	"address": RecordAddress, "schedules": RecordSchedule, "payment_methods": "payment_method",
	"subscription_offers": "subscription_offer", "user_entitlements": "", "gift_code": "",
	"promo_codes_v2": "", "events": RecordEvent, "process": "",
}

// validPathType reports whether t is a path type of the Objects API.
func validPathType(t string) bool {
	_, ok := pathTypes[t]
	return ok
}

// RecordType reports whether pathType is a path type of the Objects API and
// the record_type its objects carry ("" where zsync doesn't know it). The
// sandbox serves exactly these types.
func RecordType(pathType string) (recordType string, ok bool) {
	recordType, ok = pathTypes[pathType]
	return recordType, ok
}

// Field paths zsync writes, dot-separated from the object's top level.
// Envelope fields (status, name) sit at the top; everything else is under data.
const (
	FieldStatus = "status" // subscriptions and schedule entries

	// Subscription.
	FieldTermStart     = "data.termStartDate"        // YYYY-MM-DD
	FieldTermEnd       = "data.termEndDate"          // YYYY-MM-DD, null for evergreen
	FieldAutoRenew     = "data.attributes.autoRenew" // bool
	FieldZuora         = "data.zuora"                // ZuoraRef
	FieldZuoraVersion  = "data.zuora.version"
	FieldCreatedBySync = "data.createdBySync" // bool
	FieldOffers        = "data.offers"        // []OfferRef (catalog mapping)

	// Customer (first/last name and email are shared with addresses).
	FieldFirstName = "data.firstName"
	FieldLastName  = "data.lastName"
	FieldName      = "data.name"
	FieldEmail     = "data.email"

	// Address.
	FieldAddressType = "data.type" // billing | delivery
	FieldCompany     = "data.company"
	FieldAddress1    = "data.address1"
	FieldAddress2    = "data.address2"
	FieldCity        = "data.city"
	FieldState       = "data.state"
	FieldPostalCode  = "data.postalCode"
	FieldCountry     = "data.country"

	// Schedule entry (its status is FieldStatus).
	FieldAmount      = "data.amount" // decimal string
	FieldDate        = "data.date"   // service start, YYYY-MM-DD
	FieldCurrency    = "data.currency"
	FieldDescription = "data.description"
	FieldReference   = "data.reference" // <chargeNumber>:<serviceStartDate>
	FieldType        = "data.type"      // payment
)

// Patch is a partial update: field path → new value. It marshals into the
// nested PUT body Limio expects ("nested values will require the structure
// to update"): "data.attributes.autoRenew" becomes
// {"data":{"attributes":{"autoRenew":true}}}, "status" stays top-level, and
// "data" is always present because Limio requires it. The zero Patch is
// empty and ready to use.
type Patch struct {
	fields map[string]any
}

// Set records field's new value (nil writes JSON null).
func (p *Patch) Set(field string, value any) {
	if p.fields == nil {
		p.fields = map[string]any{}
	}
	p.fields[field] = value
}

// Get returns the value set for field.
func (p Patch) Get(field string) (any, bool) {
	v, ok := p.fields[field]
	return v, ok
}

// Len is the number of fields set.
func (p Patch) Len() int { return len(p.fields) }

// Fields returns the field paths set, sorted.
func (p Patch) Fields() []string {
	out := make([]string, 0, len(p.fields))
	for f := range p.fields {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Body builds the nested PUT body. Two fields where one is a prefix of the
// other ("data.zuora" and "data.zuora.version") are refused, as is "data"
// itself: which value wins would be an accident of ordering.
func (p Patch) Body() (map[string]any, error) {
	fields := p.Fields()
	for _, f := range fields {
		if f == "data" || f == "" || strings.HasPrefix(f, ".") || strings.HasSuffix(f, ".") || strings.Contains(f, "..") {
			return nil, fmt.Errorf("patch field %q is not a field path", f)
		}
		for i := range len(f) {
			if f[i] == '.' {
				if _, ok := p.fields[f[:i]]; ok {
					return nil, fmt.Errorf("patch fields %q and %q overlap", f[:i], f)
				}
			}
		}
	}
	body := map[string]any{"data": map[string]any{}}
	for _, f := range fields {
		parts := strings.Split(f, ".")
		m := body
		for _, s := range parts[:len(parts)-1] {
			next, ok := m[s].(map[string]any) // only maps built here, never a caller's value
			if !ok {
				next = map[string]any{}
				m[s] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = p.fields[f]
	}
	return body, nil
}

// MarshalJSON encodes the nested PUT body.
func (p Patch) MarshalJSON() ([]byte, error) {
	b, err := p.Body()
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// NewID returns a deterministic object id: prefix-<32 hex of sha256(parts
// joined by NUL)>. zsync creates objects (subscriptions, customers,
// addresses, schedule entries) under such ids, so re-running a create after
// a crash addresses the same object instead of making a second one.
func NewID(prefix string, parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return prefix + "-" + hex.EncodeToString(h[:16])
}
