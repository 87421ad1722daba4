package syncer

import (
	"strings"

	"github.com/shopspring/decimal"
)

// currencyScale is the number of minor-unit digits of an ISO 4217 currency:
// amounts are written with it ("20.00" USD, "2000" JPY, "1.500" KWD). Any
// currency not listed has 2.
func currencyScale(currency string) int32 {
	switch strings.ToUpper(currency) {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
		"UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	case "CLF", "UYW":
		return 4
	default:
		return 2
	}
}

// roundAmount rounds d to the currency's scale, half away from zero (Zuora's
// default rounding mode, "Round Half Up").
func roundAmount(d decimal.Decimal, currency string) decimal.Decimal {
	return d.Round(currencyScale(currency))
}

// formatAmount writes d rounded to the currency's scale, with all its digits
// ("20.00" USD, "2000" JPY).
func formatAmount(d decimal.Decimal, currency string) string {
	return roundAmount(d, currency).StringFixed(currencyScale(currency))
}

// sameAmount compares a Limio amount (text) with a desired one as decimals:
// "20" equals "20.00". Unreadable text is never equal.
func sameAmount(text string, want decimal.Decimal) bool {
	d, err := decimal.NewFromString(strings.TrimSpace(text))
	return err == nil && d.Equal(want)
}
