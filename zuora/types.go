package zuora

import "encoding/json"

// Subscription is GET /v1/subscriptions/{key} (reference §3), with the fields
// the sync reads. Dates are "YYYY-MM-DD"; an empty string means absent.
type Subscription struct {
	ID                        string          `json:"id"`
	SubscriptionNumber        string          `json:"subscriptionNumber"`
	Version                   Int             `json:"version"`
	IsLatestVersion           Bool            `json:"isLatestVersion,omitempty"`
	AccountID                 string          `json:"accountId"`
	AccountNumber             string          `json:"accountNumber"`
	AccountName               string          `json:"accountName,omitempty"`
	InvoiceOwnerAccountID     string          `json:"invoiceOwnerAccountId,omitempty"`
	InvoiceOwnerAccountNumber string          `json:"invoiceOwnerAccountNumber,omitempty"`
	Status                    string          `json:"status"`   // Draft | Pending Activation | Pending Acceptance | Active | Cancelled | Suspended
	TermType                  string          `json:"termType"` // TERMED | EVERGREEN
	ContractEffectiveDate     string          `json:"contractEffectiveDate,omitempty"`
	ServiceActivationDate     string          `json:"serviceActivationDate,omitempty"`
	CustomerAcceptanceDate    string          `json:"customerAcceptanceDate,omitempty"`
	SubscriptionStartDate     string          `json:"subscriptionStartDate,omitempty"`
	SubscriptionEndDate       string          `json:"subscriptionEndDate,omitempty"`
	TermStartDate             string          `json:"termStartDate,omitempty"`
	TermEndDate               string          `json:"termEndDate,omitempty"`
	InitialTerm               Int             `json:"initialTerm,omitempty"`
	InitialTermPeriodType     string          `json:"initialTermPeriodType,omitempty"`
	CurrentTerm               Int             `json:"currentTerm,omitempty"`
	CurrentTermPeriodType     string          `json:"currentTermPeriodType,omitempty"`
	RenewalTerm               Int             `json:"renewalTerm,omitempty"`
	RenewalTermPeriodType     string          `json:"renewalTermPeriodType,omitempty"`
	AutoRenew                 Bool            `json:"autoRenew"`
	RenewalSetting            string          `json:"renewalSetting,omitempty"`
	Currency                  string          `json:"currency,omitempty"`
	ContractedMrr             Amount          `json:"contractedMrr"`
	TotalContractedValue      Amount          `json:"totalContractedValue"`
	CancelReason              string          `json:"cancelReason,omitempty"`
	OrderNumber               string          `json:"orderNumber,omitempty"`
	Notes                     string          `json:"notes,omitempty"`
	StatusHistory             []StatusHistory `json:"statusHistory,omitempty"`
	RatePlans                 []RatePlan      `json:"ratePlans"`
	CustomFields              CustomFields    `json:"-"` // *__c
}

// StatusHistory is one entry of Subscription.StatusHistory.
type StatusHistory struct {
	StartDate string `json:"startDate"`
	EndDate   string `json:"endDate,omitempty"`
	Status    string `json:"status"` // may also be OutOfTerm
}

// RatePlan is one of Subscription.RatePlans.
type RatePlan struct {
	ID                string       `json:"id"`
	ProductID         string       `json:"productId,omitempty"`
	ProductName       string       `json:"productName,omitempty"`
	ProductSku        string       `json:"productSku,omitempty"`
	ProductRatePlanID string       `json:"productRatePlanId"`
	RatePlanName      string       `json:"ratePlanName"`
	LastChangeType    string       `json:"lastChangeType,omitempty"` // Add | Update | Remove
	RatePlanCharges   []Charge     `json:"ratePlanCharges"`
	CustomFields      CustomFields `json:"-"`
}

// Charge is one of RatePlan.RatePlanCharges.
type Charge struct {
	ID                      string `json:"id"`
	OriginalChargeID        string `json:"originalChargeId,omitempty"`
	ProductRatePlanChargeID string `json:"productRatePlanChargeId,omitempty"`
	Number                  string `json:"number"` // C-…, stable across versions
	Name                    string `json:"name"`
	Description             string `json:"description,omitempty"`
	Version                 Int    `json:"version,omitempty"`
	Segment                 Int    `json:"segment,omitempty"`
	Type                    string `json:"type"`  // OneTime | Recurring | Usage
	Model                   string `json:"model"` // FlatFee | PerUnit | DiscountFixedAmount | DiscountPercentage | …
	UOM                     string `json:"uom,omitempty"`
	Currency                string `json:"currency,omitempty"`
	Price                   Amount `json:"price"`
	Quantity                Amount `json:"quantity"`
	DiscountAmount          Amount `json:"discountAmount"`
	DiscountPercentage      Amount `json:"discountPercentage"`
	ApplyDiscountTo         string `json:"applyDiscountTo,omitempty"`
	DiscountLevel           string `json:"discountLevel,omitempty"`
	BillingDay              String `json:"billingDay,omitempty"`
	BillingPeriod           string `json:"billingPeriod,omitempty"` // Month | Quarter | Semi_Annual | Annual | …
	BillingTiming           string `json:"billingTiming,omitempty"` // IN_ADVANCE | IN_ARREARS
	BillingPeriodAlignment  string `json:"billingPeriodAlignment,omitempty"`
	EffectiveStartDate      string `json:"effectiveStartDate,omitempty"`
	EffectiveEndDate        string `json:"effectiveEndDate,omitempty"`
	ChargedThroughDate      string `json:"chargedThroughDate,omitempty"`
	ProcessedThroughDate    string `json:"processedThroughDate,omitempty"`
	TriggerEvent            string `json:"triggerEvent,omitempty"`
	EndDateCondition        string `json:"endDateCondition,omitempty"`
	UpToPeriods             Int    `json:"upToPeriods,omitempty"`
	UpToPeriodsType         string `json:"upToPeriodsType,omitempty"`
	MRR                     Amount `json:"mrr"`
	TCV                     Amount `json:"tcv"`
	Done                    Bool   `json:"done,omitempty"`
	// ChargeSegments are the charge's segments (a price change makes a new
	// one), returned with charge-detail=all-segments; the fields above are
	// the last segment's.
	ChargeSegments []ChargeSegment `json:"chargeSegments,omitempty"`
	CustomFields   CustomFields    `json:"-"`
}

// ChargeSegment is one segment of a charge (what zsync reads of it).
type ChargeSegment struct {
	Segment              Int    `json:"segment,omitempty"`
	EffectiveStartDate   string `json:"effectiveStartDate,omitempty"`
	EffectiveEndDate     string `json:"effectiveEndDate,omitempty"`
	ChargedThroughDate   string `json:"chargedThroughDate,omitempty"`
	ProcessedThroughDate string `json:"processedThroughDate,omitempty"`
}

// Account is GET /v1/accounts/{key} (reference §4).
type Account struct {
	BasicInfo         AccountBasicInfo  `json:"basicInfo"`
	BillingAndPayment BillingAndPayment `json:"billingAndPayment"`
	Metrics           AccountMetrics    `json:"metrics"`
	BillToContact     *Contact          `json:"billToContact"`
	SoldToContact     *Contact          `json:"soldToContact"`
}

// AccountBasicInfo is Account.BasicInfo.
type AccountBasicInfo struct {
	ID            string       `json:"id"`
	Name          string       `json:"name"`
	AccountNumber string       `json:"accountNumber"`
	Status        string       `json:"status"` // Active | Draft | Canceled
	CrmID         string       `json:"crmId,omitempty"`
	Batch         string       `json:"batch,omitempty"`
	Notes         string       `json:"notes,omitempty"`
	CustomFields  CustomFields `json:"-"`
}

// BillingAndPayment is Account.BillingAndPayment.
type BillingAndPayment struct {
	BillCycleDay Int    `json:"billCycleDay"` // declared a string, sent as 1
	Currency     string `json:"currency"`
	PaymentTerm  string `json:"paymentTerm,omitempty"`
	AutoPay      Bool   `json:"autoPay"`
}

// AccountMetrics is Account.Metrics.
type AccountMetrics struct {
	Balance       Amount `json:"balance"`
	ContractedMrr Amount `json:"contractedMrr"`
}

// Contact is a bill-to or sold-to contact. Country and state are full names.
type Contact struct {
	ID            string       `json:"id,omitempty"`
	FirstName     string       `json:"firstName"`
	LastName      string       `json:"lastName"`
	Nickname      string       `json:"nickname,omitempty"`
	Company       string       `json:"company,omitempty"` // not a standard field; read from Company__c when absent
	Address1      string       `json:"address1,omitempty"`
	Address2      string       `json:"address2,omitempty"`
	City          string       `json:"city,omitempty"`
	State         string       `json:"state,omitempty"`
	County        string       `json:"county,omitempty"`
	ZipCode       string       `json:"zipCode,omitempty"`
	PostalCode    string       `json:"postalCode,omitempty"` // the contact-snapshot spelling
	Country       string       `json:"country,omitempty"`
	WorkEmail     string       `json:"workEmail,omitempty"`
	PersonalEmail string       `json:"personalEmail,omitempty"`
	WorkPhone     string       `json:"workPhone,omitempty"`
	HomePhone     string       `json:"homePhone,omitempty"`
	MobilePhone   string       `json:"mobilePhone,omitempty"`
	CustomFields  CustomFields `json:"-"`
}

// Email is the work email, or the personal one when there is none.
func (c *Contact) Email() string {
	if c.WorkEmail != "" {
		return c.WorkEmail
	}
	return c.PersonalEmail
}

// Zip is zipCode, or postalCode when only that is set.
func (c *Contact) Zip() string {
	if c.ZipCode != "" {
		return c.ZipCode
	}
	return c.PostalCode
}

// BillingPreviewRequest is POST /v1/operations/billing-preview (reference §5).
type BillingPreviewRequest struct {
	AccountID                      string `json:"accountId,omitempty"`
	AccountNumber                  string `json:"accountNumber,omitempty"`
	TargetDate                     string `json:"targetDate"`
	AssumeRenewal                  string `json:"assumeRenewal,omitempty"` // None | All | Autorenew
	ChargeTypeToExclude            string `json:"chargeTypeToExclude,omitempty"`
	IncludingEvergreenSubscription bool   `json:"includingEvergreenSubscription,omitempty"`
}

// BillingPreview is the billing-preview response. Its UnmarshalJSON names
// the line and field of a value it can't read (preview.go).
type BillingPreview struct {
	Success      bool          `json:"success"`
	AccountID    string        `json:"accountId"`
	InvoiceItems []InvoiceItem `json:"invoiceItems"`
	// CreditMemoItems come back with Invoice Settlement: negative charges as
	// credits, and the discounts applied to them.
	CreditMemoItems []CreditMemoItem `json:"creditMemoItems,omitempty"`
}

// InvoiceItem is one future charge of a billing preview
// (POSTBillingPreviewInvoiceItem). A discount line has processingType
// Discount, its own chargeNumber and appliedToItemId naming the id of the
// line it reduces; Zuora's example sends it positive, other tenants negative.
type InvoiceItem struct {
	ID                 string      `json:"id,omitempty"`
	SubscriptionName   string      `json:"subscriptionName"`
	SubscriptionID     string      `json:"subscriptionId"`
	SubscriptionNumber string      `json:"subscriptionNumber"`
	ServiceStartDate   string      `json:"serviceStartDate"`
	ServiceEndDate     string      `json:"serviceEndDate"`
	ChargeAmount       Amount      `json:"chargeAmount"` // excluding tax, whatever the tax mode
	TaxAmount          Amount      `json:"taxAmount"`    // Zuora Tax, tax-inclusive charges only; else 0
	ChargeDescription  string      `json:"chargeDescription,omitempty"`
	ChargeName         string      `json:"chargeName"`
	ChargeNumber       string      `json:"chargeNumber"`
	ChargeID           string      `json:"chargeId,omitempty"`
	ProductName        string      `json:"productName,omitempty"`
	Quantity           Amount      `json:"quantity"`
	UnitOfMeasure      string      `json:"unitOfMeasure,omitempty"`
	ChargeDate         PreviewTime `json:"chargeDate"`
	ChargeType         string      `json:"chargeType,omitempty"`
	ProcessingType     string      `json:"processingType,omitempty"` // Charge | Discount | Prepayment | Tax
	AppliedToItemID    string      `json:"appliedToItemId,omitempty"`
	NumberOfDeliveries *Amount     `json:"numberOfDeliveries,omitempty"`
}

// CreditMemoItem is one of BillingPreview.CreditMemoItems
// (POSTBillingPreviewCreditMemoItem). A credit carries amount and
// amountWithoutTax; a discount applied to a credit comes in the invoice
// item's shape (chargeAmount, appliedToItemId), as Zuora's example shows.
// Absent amounts are nil.
type CreditMemoItem struct {
	ID                 string      `json:"id,omitempty"`
	SubscriptionName   string      `json:"subscriptionName,omitempty"`
	SubscriptionID     string      `json:"subscriptionId,omitempty"`
	SubscriptionNumber string      `json:"subscriptionNumber,omitempty"`
	ServiceStartDate   string      `json:"serviceStartDate"`
	ServiceEndDate     string      `json:"serviceEndDate,omitempty"`
	Amount             *Amount     `json:"amount,omitempty"` // including tax when the charge is tax-inclusive
	AmountWithoutTax   *Amount     `json:"amountWithoutTax,omitempty"`
	ChargeAmount       *Amount     `json:"chargeAmount,omitempty"`
	TaxAmount          *Amount     `json:"taxAmount,omitempty"`
	ChargeDescription  string      `json:"chargeDescription,omitempty"`
	ChargeName         string      `json:"chargeName,omitempty"`
	ChargeNumber       string      `json:"chargeNumber"`
	ChargeID           string      `json:"chargeId,omitempty"`
	RatePlanChargeID   string      `json:"ratePlanChargeId,omitempty"`
	ProductName        string      `json:"productName,omitempty"`
	SKU                string      `json:"sku,omitempty"`
	SKUName            string      `json:"skuName,omitempty"`
	Comment            string      `json:"comment,omitempty"`
	Quantity           *Amount     `json:"quantity,omitempty"`
	UnitOfMeasure      string      `json:"unitOfMeasure,omitempty"`
	ChargeDate         PreviewTime `json:"chargeDate"`
	ChargeType         string      `json:"chargeType,omitempty"`
	ProcessingType     string      `json:"processingType,omitempty"`
	AppliedToItemID    string      `json:"appliedToItemId,omitempty"`
	NumberOfDeliveries *Amount     `json:"numberOfDeliveries,omitempty"`
}

// Order is the "order" of GET /v1/orders/{orderNumber} (reference §6).
type Order struct {
	OrderNumber           string              `json:"orderNumber"`
	OrderDate             string              `json:"orderDate,omitempty"`
	CreatedDate           DateTime            `json:"createdDate,omitempty"`
	CreatedBy             string              `json:"createdBy,omitempty"` // user id
	UpdatedBy             string              `json:"updatedBy,omitempty"`
	UpdatedDate           DateTime            `json:"updatedDate,omitempty"`
	ExistingAccountNumber string              `json:"existingAccountNumber,omitempty"`
	Currency              string              `json:"currency,omitempty"`
	Status                string              `json:"status,omitempty"`
	Category              string              `json:"category,omitempty"`
	Description           string              `json:"description,omitempty"`
	CustomFields          CustomFields        `json:"customFields,omitempty"` // Source__c, InitiatedSource__c, …
	Subscriptions         []OrderSubscription `json:"subscriptions,omitempty"`
}

// OrderSubscription is one of Order.Subscriptions.
type OrderSubscription struct {
	SubscriptionNumber string        `json:"subscriptionNumber"`
	BaseVersion        Int           `json:"baseVersion,omitempty"`
	NewVersion         Int           `json:"newVersion,omitempty"`
	CustomFields       CustomFields  `json:"customFields,omitempty"`
	OrderActions       []OrderAction `json:"orderActions,omitempty"`
}

// OrderAction is one of OrderSubscription.OrderActions.
type OrderAction struct {
	Type         string       `json:"type"`
	Sequence     Int          `json:"sequence,omitempty"`
	CustomFields CustomFields `json:"customFields,omitempty"`
}

// Custom fields travel as top-level `__c` keys on these objects.

type plainSubscription Subscription
type plainRatePlan RatePlan
type plainCharge Charge
type plainBasicInfo AccountBasicInfo
type plainContact Contact

// UnmarshalJSON keeps `__c` keys in CustomFields.
func (s *Subscription) UnmarshalJSON(b []byte) (err error) {
	s.CustomFields, err = splitCustom(b, (*plainSubscription)(s))
	return err
}

// MarshalJSON writes CustomFields back as top-level keys.
func (s Subscription) MarshalJSON() ([]byte, error) {
	return joinCustom(plainSubscription(s), s.CustomFields)
}

// UnmarshalJSON keeps `__c` keys in CustomFields.
func (r *RatePlan) UnmarshalJSON(b []byte) (err error) {
	r.CustomFields, err = splitCustom(b, (*plainRatePlan)(r))
	return err
}

// MarshalJSON writes CustomFields back as top-level keys.
func (r RatePlan) MarshalJSON() ([]byte, error) { return joinCustom(plainRatePlan(r), r.CustomFields) }

// UnmarshalJSON keeps `__c` keys in CustomFields.
func (c *Charge) UnmarshalJSON(b []byte) (err error) {
	c.CustomFields, err = splitCustom(b, (*plainCharge)(c))
	return err
}

// MarshalJSON writes CustomFields back as top-level keys.
func (c Charge) MarshalJSON() ([]byte, error) { return joinCustom(plainCharge(c), c.CustomFields) }

// UnmarshalJSON keeps `__c` keys in CustomFields.
func (a *AccountBasicInfo) UnmarshalJSON(b []byte) (err error) {
	a.CustomFields, err = splitCustom(b, (*plainBasicInfo)(a))
	return err
}

// MarshalJSON writes CustomFields back as top-level keys.
func (a AccountBasicInfo) MarshalJSON() ([]byte, error) {
	return joinCustom(plainBasicInfo(a), a.CustomFields)
}

// UnmarshalJSON keeps `__c` keys in CustomFields.
func (c *Contact) UnmarshalJSON(b []byte) (err error) {
	c.CustomFields, err = splitCustom(b, (*plainContact)(c))
	return err
}

// MarshalJSON writes CustomFields back as top-level keys.
func (c Contact) MarshalJSON() ([]byte, error) { return joinCustom(plainContact(c), c.CustomFields) }

var _ json.Marshaler = Subscription{}
