package zuora

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Billing-preview decoding. Zuora's published example disagrees with its
// declared types, and tenants send both forms:
//   - chargeDate: declared date-time (RFC 3339), the example sends
//     "2017-01-06 16:38:26" (no zone; read as UTC);
//   - chargeAmount, taxAmount, quantity: declared decimal strings, the example
//     sends numbers (Amount reads both);
//   - discounts: positive with appliedToItemId in the example, negative on
//     other tenants (both decode; the syncer nets either sign).
// A value that is in neither form is a FieldError naming its line and field.

// previewTimeLayouts are the chargeDate forms read, the example's first.
var previewTimeLayouts = []string{time.DateTime, time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly}

// PreviewTime is a billing-preview chargeDate ("" and null are zero).
type PreviewTime struct{ time.Time }

// UnmarshalJSON accepts "2017-01-06 16:38:26", RFC 3339, a date, "", null.
func (t *PreviewTime) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("zuora: date-time: %s", b)
	}
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	v, ok := parseDateTime(s, time.UTC) // the same forms as DateTime
	if !ok {
		return fmt.Errorf("zuora: date-time: %q", s)
	}
	t.Time = v
	return nil
}

// MarshalJSON writes the example's form (the sandbox answers with it).
func (t PreviewTime) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.Format(time.DateTime))
}

// FieldError is a value Zuora sent that is neither in the declared form nor
// in the example form. It fails the same way on every retry.
type FieldError struct {
	Field string // e.g. invoiceItems[2].chargeAmount
	Err   error
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

type plainBillingPreview struct {
	Success         Bool              `json:"success"`
	AccountID       string            `json:"accountId"`
	InvoiceItems    []json.RawMessage `json:"invoiceItems"`
	CreditMemoItems []json.RawMessage `json:"creditMemoItems"`
}

// UnmarshalJSON decodes line by line, so a bad value names where it is.
func (bp *BillingPreview) UnmarshalJSON(b []byte) error {
	var raw plainBillingPreview
	if err := json.Unmarshal(b, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &FieldError{Field: te.Field, Err: err}
		}
		return err
	}
	out := BillingPreview{Success: bool(raw.Success), AccountID: raw.AccountID}
	out.InvoiceItems = make([]InvoiceItem, len(raw.InvoiceItems))
	for i, r := range raw.InvoiceItems {
		if err := decodeLine(r, &out.InvoiceItems[i], fmt.Sprintf("invoiceItems[%d]", i)); err != nil {
			return err
		}
	}
	if len(raw.CreditMemoItems) > 0 {
		out.CreditMemoItems = make([]CreditMemoItem, len(raw.CreditMemoItems))
	}
	for i, r := range raw.CreditMemoItems {
		if err := decodeLine(r, &out.CreditMemoItems[i], fmt.Sprintf("creditMemoItems[%d]", i)); err != nil {
			return err
		}
	}
	*bp = out
	return nil
}

// decodeLine decodes one line into dst (a pointer to a struct); when that
// fails it decodes the fields one at a time to name the one at fault.
func decodeLine(b []byte, dst any, at string) error {
	err := json.Unmarshal(b, dst)
	if err == nil {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return &FieldError{Field: at, Err: err}
	}
	t := reflect.TypeOf(dst).Elem()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		v, ok := fields[name]
		if !ok {
			continue
		}
		if ferr := json.Unmarshal(v, reflect.New(f.Type).Interface()); ferr != nil {
			return &FieldError{Field: at + "." + name, Err: ferr}
		}
	}
	return &FieldError{Field: at, Err: err}
}
