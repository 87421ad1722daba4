package limio

// Objects API shapes (docs/design.md "Limio's API as zsync
// assumes it"). Every object shares the envelope fields; Data is typed per
// object kind with just the fields zsync reads. Writes are partial (PUT sends
// only what changes, see fields.go), so fields zsync doesn't know survive.

// Record types as they appear in record_type.
const (
	RecordSubscription = "subscription"
	RecordCustomer     = "customer"
	RecordAddress      = "address"
	RecordSchedule     = "schedule"
	RecordEvent        = "event"
)

// Subscription statuses zsync writes. Limio also sends others ("initial"):
// status is an open string.
const (
	StatusActive    = "active"
	StatusCancelled = "cancelled"
	StatusSuspended = "suspended"
	StatusExpired   = "expired"
	StatusPending   = "pending"
)

// Schedule entry statuses.
const (
	SchedulePending   = "pending"   // a future charge
	ScheduleActive    = "active"    // billed
	ScheduleCancelled = "cancelled" // no longer applicable; kept, never deleted
)

// Address types.
const (
	AddressBilling  = "billing"  // from Zuora's bill-to contact
	AddressDelivery = "delivery" // from Zuora's sold-to contact
)

// Envelope is what every Limio object carries besides its data.
type Envelope struct {
	ID         string `json:"id"`
	RecordType string `json:"record_type,omitempty"`
	Name       string `json:"name,omitempty"`
	Reference  string `json:"reference,omitempty"`
	Status     string `json:"status,omitempty"`
	Customer   string `json:"customer,omitempty"` // cus-… (subscriptions)
	Owner      string `json:"owner,omitempty"`    // id-…
	Related    string `json:"related,omitempty"`  // sub-… (addresses, schedules)
	Service    string `json:"service,omitempty"`
	Mode       string `json:"mode,omitempty"`
	Created    string `json:"created,omitempty"`
	Updated    string `json:"updated,omitempty"`
}

// Subscription is a Limio subscription (sub-…).
type Subscription struct {
	Envelope
	Start string           `json:"start,omitempty"`
	Data  SubscriptionData `json:"data"`
}

// SubscriptionData is the part of a subscription's data zsync reads.
type SubscriptionData struct {
	Name          string     `json:"name,omitempty"`
	TermStartDate string     `json:"termStartDate,omitempty"`
	TermEndDate   *string    `json:"termEndDate"` // null for evergreen
	Attributes    Attributes `json:"attributes"`
	Zuora         *ZuoraRef  `json:"zuora,omitempty"`
	CreatedBySync bool       `json:"createdBySync,omitempty"`
	Offers        []OfferRef `json:"offers,omitempty"`
	// Status is data.status: where the status lives under Dialect
	// StatusField "data.status" (the client copies it to Envelope.Status).
	Status string         `json:"status,omitempty"`
	Extra  map[string]any `json:"-"`
}

// Attributes is SubscriptionData.Attributes.
type Attributes struct {
	AutoRenew *bool `json:"autoRenew,omitempty"`
}

// ZuoraRef records which Zuora subscription a Limio subscription mirrors.
type ZuoraRef struct {
	SubscriptionNumber string `json:"subscriptionNumber"`
	SubscriptionID     string `json:"subscriptionId,omitempty"`
	AccountNumber      string `json:"accountNumber,omitempty"`
	Version            int    `json:"version,omitempty"`
}

// OfferRef is a catalog offer the subscription maps to (catalog mapping).
type OfferRef struct {
	Path              string `json:"path"`                        // /offers2/…
	ProductRatePlanID string `json:"productRatePlanId,omitempty"` // the Zuora side of the mapping
}

// Customer is a Limio customer (cus-…).
type Customer struct {
	Envelope
	Data CustomerData `json:"data"`
}

// CustomerData is the part of a customer's data zsync reads.
type CustomerData struct {
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
}

// Address is an address related to a subscription (address-…).
type Address struct {
	Envelope
	Data AddressData `json:"data"`
}

// AddressData is an address's data.
type AddressData struct {
	Type       string `json:"type"` // billing | delivery
	FirstName  string `json:"firstName,omitempty"`
	LastName   string `json:"lastName,omitempty"`
	Company    string `json:"company,omitempty"`
	Address1   string `json:"address1,omitempty"`
	Address2   string `json:"address2,omitempty"`
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
	Country    string `json:"country,omitempty"`
	Email      string `json:"email,omitempty"`
}

// Schedule is one entry of a subscription's payment schedule (schedule-…).
type Schedule struct {
	Envelope
	Data ScheduleData `json:"data"`
}

// ScheduleData is a schedule entry's data.
type ScheduleData struct {
	Date        string `json:"date"`   // service start, YYYY-MM-DD (Limio's own entries may carry a timestamp)
	Amount      string `json:"amount"` // decimal string, "20.00"
	Currency    string `json:"currency"`
	Description string `json:"description,omitempty"`
	Reference   string `json:"reference"`        // <chargeNumber>:<serviceStartDate>, the stable identity
	Type        string `json:"type"`             // payment
	Status      string `json:"status,omitempty"` // data.status, under Dialect StatusField "data.status"
}

// Related is everything related to a subscription, by kind.
type Related struct {
	Customer  *Customer
	Addresses []Address
	Schedules []Schedule
}

// TimelineEvent is POST /api/timeline/subscription.
type TimelineEvent struct {
	ForSubscription TimelineTarget  `json:"forSubscription"`
	Name            string          `json:"name"`
	Type            string          `json:"type"`
	Source          string          `json:"source,omitempty"`
	Fields          []TimelineField `json:"fields,omitempty"` // the array's name is not in the captured docs
}

// TimelineTarget names the subscription an event is for.
type TimelineTarget struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// TimelineField is one labelled value of a timeline event.
type TimelineField struct {
	Label string `json:"label"`
	Type  string `json:"type"` // string | date | currency | number | boolean | json
	Value any    `json:"value"`
}
