package zuora

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zsync/zsync/internal/clip"
)

// Zuora's own spec disagrees with its examples on types (Disagreements
// below): billCycleDay is declared a string and sent as 1, amounts declared
// decimal strings and sent as numbers, booleans sent as "true", date-times as
// "YYYY-MM-DD HH:MM:SS". These types decode either form; a value of neither
// form is a *json.UnmarshalTypeError, which encoding/json completes with the
// field's path, so the client's error names the field.

// typeError is a value of neither form for a lenient type.
func typeError(b []byte, want string) error {
	return &json.UnmarshalTypeError{Value: clip.To(string(b), 40), Type: reflect.TypeOf(want)}
}

// Int is an integer sent as a number or a numeric string ("" and null are 0).
type Int int

// UnmarshalJSON accepts 12, "12", "", null.
func (n *Int) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return typeError(b, "integer")
	}
	*n = Int(f)
	return nil
}

// Bool is a boolean sent as true or "true".
type Bool bool

// UnmarshalJSON accepts true, "true", "True", 1, "", null.
func (v *Bool) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	switch s {
	case "", "null":
		*v = false
		return nil
	}
	p, err := strconv.ParseBool(s)
	if err != nil {
		return typeError(b, "boolean")
	}
	*v = Bool(p)
	return nil
}

// String is text that Zuora sometimes sends as a number.
type String string

// UnmarshalJSON accepts "x", 12, true, null; not an object or an array.
func (v *String) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		return typeError(b, "string")
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = String(s)
		return nil
	}
	if string(b) == "null" {
		*v = ""
		return nil
	}
	*v = String(b)
	return nil
}

// Amount is an exact decimal sent as a number or a string. Money is never a
// float64 in zsync.
type Amount struct{ decimal.Decimal }

// NewAmount parses s ("20.00"); it panics on a malformed literal (tests and
// fixtures only).
func NewAmount(s string) Amount { return Amount{decimal.RequireFromString(s)} }

// UnmarshalJSON accepts 20, 20.5, "20.00", "", null.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "" || s == "null" {
		a.Decimal = decimal.Zero
		return nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return typeError(b, "decimal")
	}
	a.Decimal = d
	return nil
}

// DateTime is a Zuora date-time as sent: RFC 3339 (declared) or
// "YYYY-MM-DD HH:MM:SS" (the examples, in the tenant's time zone). It keeps
// the text; Time reads it.
type DateTime string

// UnmarshalJSON accepts either form, "" and null.
func (d *DateTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return typeError(b, "date-time")
	}
	if s != "" {
		if _, ok := parseDateTime(s, time.UTC); !ok {
			return typeError(b, "date-time")
		}
	}
	*d = DateTime(s)
	return nil
}

// Time is the instant; a time without a zone is read in loc (the tenant's).
func (d DateTime) Time(loc *time.Location) (time.Time, bool) { return parseDateTime(string(d), loc) }

// parseDateTime reads the forms a billing preview's chargeDate is read in
// (previewTimeLayouts): one list of date-time forms for the client.
func parseDateTime(s string, loc *time.Location) (time.Time, bool) {
	for _, l := range previewTimeLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// MarshalJSON writes a JSON number with the exact digits (Zuora's shape).
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a.Decimal.String()), nil }

// CustomFields holds an object's `*__c` custom fields, kept as raw JSON.
type CustomFields map[string]json.RawMessage

// Get returns a custom field as text ("" when absent or null).
func (c CustomFields) Get(name string) string {
	raw, ok := c[name]
	if !ok {
		return ""
	}
	var s String
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw)
	}
	return string(s)
}

// splitCustom decodes b into dst (a pointer to a plain struct) and returns
// its `__c` keys. Objects carry custom fields as top-level keys.
func splitCustom(b []byte, dst any) (CustomFields, error) {
	if err := json.Unmarshal(b, dst); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	var cf CustomFields
	for k, v := range all {
		if len(k) > 3 && k[len(k)-3:] == "__c" {
			if cf == nil {
				cf = CustomFields{}
			}
			cf[k] = v
		}
	}
	return cf, nil
}

// joinCustom marshals src (a plain struct) with cf merged in at the top level.
func joinCustom(src any, cf CustomFields) ([]byte, error) {
	b, err := json.Marshal(src)
	if err != nil || len(cf) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range cf {
		all[k] = v
	}
	return json.Marshal(all)
}

// Disagreement is a field, or a class of fields, whose documented examples
// (what tenants send) disagree with the type Zuora's spec declares. The
// client decodes both forms; the contract tests (internal/zuoraspec) widen
// the spec by this list and by nothing else, and test both forms of every
// entry.
type Disagreement struct {
	Op       string // the operation as the spec writes it ("GET /v1/accounts/{account-key}"); "" for a class
	Field    string // dotted path in the 2xx body (arrays are stepped through); "" for a class
	Format   string // a class: every string of this declared format
	Sent     string // the JSON type the examples send: string, number, integer, boolean
	Declared string // a literal of the declared form, for the tests
	Example  string // a literal of the example form, for the tests
	Reason   string
}

const (
	opSubscription = "GET /v1/subscriptions/{subscription-key}"
	opAccount      = "GET /v1/accounts/{account-key}"
	opOrder        = "GET /v1/orders/{orderNumber}"
)

// Disagreements lists every known one, once.
var Disagreements = []Disagreement{
	{Format: "decimal", Sent: "number", Declared: `"12.99"`, Example: `12.99`,
		Reason: "amounts are declared decimal strings; every example (and tenant) sends JSON numbers"},
	{Format: "date-time", Sent: "string", Declared: `"2018-12-13T17:21:43+01:00"`, Example: `"2018-12-13 17:21:43"`,
		Reason: "date-times are declared RFC 3339; the examples write YYYY-MM-DD HH:MM:SS (tenant time)"},
	{Op: opAccount, Field: "billingAndPayment.billCycleDay", Sent: "integer", Declared: `"1"`, Example: `1`,
		Reason: "declared a string, sent as the day number"},
	{Op: opAccount, Field: "metricsData.balance", Sent: "number", Declared: `"0"`, Example: `0`,
		Reason: "declared a plain string, sent as a number like the other balances"},
	{Op: opAccount, Field: "einvoiceProfile.enabled", Sent: "string", Declared: `true`, Example: `"true"`,
		Reason: "declared a boolean, sent as the string \"true\""},
	{Op: opAccount, Field: "einvoiceProfile.businessNumberSchemeId", Sent: "integer", Declared: `"88"`, Example: `88`,
		Reason: "e-invoicing scheme ids are declared strings, sent as numbers"},
	{Op: opAccount, Field: "einvoiceProfile.endpointId", Sent: "integer", Declared: `"8992"`, Example: `8992`,
		Reason: "e-invoicing endpoint ids are declared strings, sent as numbers"},
	{Op: opAccount, Field: "einvoiceProfile.endpointSchemeId", Sent: "integer", Declared: `"88"`, Example: `88`,
		Reason: "e-invoicing scheme ids are declared strings, sent as numbers"},
	{Op: opSubscription, Field: "invoiceScheduleId", Sent: "string", Declared: `1`, Example: `"ec6f0d5dc8af451ab95343fb3c588c1a"`,
		Reason: "declared an integer, sent as a 32-character object id"},
	{Op: "GET /v1/subscriptions/accounts/{account-key}", Field: "subscriptions.invoiceScheduleId", Sent: "string",
		Declared: `1`, Example: `"ec6f0d5dc8af451ab95343fb3c588c1a"`, Reason: "as for one subscription"},
	{Op: opOrder, Field: "order.invoiceScheduleId", Sent: "string", Declared: `1`, Example: `"ec6f0d5dc8af451ab95343fb3c588c1a"`,
		Reason: "as for a subscription"},
	{Op: opSubscription, Field: "invoiceSeparately", Sent: "boolean", Declared: `"false"`, Example: `false`,
		Reason: "declared a string, sent as a boolean"},
	{Op: "GET /v1/subscriptions/accounts/{account-key}", Field: "subscriptions.invoiceSeparately", Sent: "boolean",
		Declared: `"false"`, Example: `false`, Reason: "as for one subscription"},
}
