package zuora

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/zsync/zsync/internal/clip"
	"github.com/zsync/zsync/internal/upstream"
)

// Error categories: the last two digits of Zuora's 8-digit error codes
// (reference §8). Only the ones the classification treats specially are named.
const (
	CategoryNotFound  = 40
	CategoryLocked    = 50
	CategoryInternal  = 60
	CategoryTemporary = 61
	CategoryLimit     = 70
	CategoryIntegr    = 99
)

// Category returns the error category of a Zuora code ("53100320" → 20), or
// -1 for a code that is not numeric (the object-CRUD shape sends names such as
// "INVALID_VALUE").
func Category(code string) int {
	code = strings.TrimSpace(code)
	if len(code) < 2 {
		return -1
	}
	n, err := strconv.ParseUint(code, 10, 64)
	if err != nil {
		return -1
	}
	return int(n % 100)
}

// kindForCategory decides retry behaviour from a category. 60 ("internal") is
// retryable because the reference's retry advice covers HTTP 500, which is how
// Zuora reports it; everything unknown is permanent.
func kindForCategory(cat int) upstream.Kind {
	switch cat {
	case CategoryNotFound:
		return upstream.NotFound
	case CategoryLimit:
		return upstream.Throttled
	case CategoryLocked, CategoryInternal, CategoryTemporary, CategoryIntegr:
		return upstream.Retryable
	default:
		return upstream.Permanent
	}
}

// kindForName classifies the named codes of the action and object-CRUD
// calls (Zuora's ErrorCode enumeration, docs.zuora.com "SOAP API / Errors"):
// lock competition, temporary and server errors retry, the request limits
// throttle, anything else (INVALID_VALUE, MALFORMED_QUERY, …) is permanent.
func kindForName(code string) upstream.Kind {
	switch strings.ToUpper(strings.TrimSpace(code)) {
	case "LOCK_COMPETITION", "TEMPORARY_ERROR", "SERVER_UNAVAILABLE", "TRANSACTION_TIMEOUT", "UNKNOWN_ERROR":
		return upstream.Retryable
	case "REQUEST_EXCEEDED_LIMIT", "REQUEST_EXCEEDED_RATE":
		return upstream.Throttled
	}
	return upstream.Permanent
}

// envelope covers both error shapes Zuora uses: the REST one
// {"success":false,"processId","reasons":[{"code","message"}]} and the
// object-CRUD / action one {"Success":false,"Errors":[{"Code","Message"}]}.
// encoding/json matches keys case-insensitively, so success/Success and
// code/Code land in the same fields; reasons and Errors are kept apart.
type envelope struct {
	Success   *Bool    `json:"success"`
	ProcessID string   `json:"processId"`
	Reasons   []reason `json:"reasons"`
	Errors    []reason `json:"Errors"`
	Message   string   `json:"message"`
	RequestID string   `json:"requestId"`
	// The Actions (ZOQL) answer faults SOAP-style, at HTTP 500:
	// {"faultcode":"fns:INVALID_FIELD","faultstring":"…","detail":{"MalformedQueryFault":{…}}}.
	FaultCode   string                     `json:"faultcode"`
	FaultString string                     `json:"faultstring"`
	Detail      map[string]json.RawMessage `json:"detail"`
}

type reason struct {
	Code    String `json:"code"` // a number or a string
	Message string `json:"message"`
}

// successTrue reports, without decoding body, that every "success" key in
// it (any case, as encoding/json matches keys) holds true: then the
// top-level one, if any, is true, and a 2xx answer is good. Anything else,
// or an escape that could spell a key, says false (decode to tell).
func successTrue(body []byte) bool {
	if bytes.Contains(body, []byte(`\u`)) {
		return false
	}
	rest := body
	for {
		i := indexFold(rest, successKey)
		if i < 0 {
			return true
		}
		rest = bytes.TrimLeft(rest[i+len(successKey):], " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			continue // a value that reads "…success", not a key
		}
		rest = bytes.TrimLeft(rest[1:], " \t\r\n")
		if !bytes.HasPrefix(rest, []byte("true")) {
			return false
		}
	}
}

var successKey = []byte(`success"`)

// indexFold is the index of sub (ASCII, starting with s) in b, any case;
// -1 if none.
func indexFold(b, sub []byte) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		j := bytes.IndexAny(b[i:], "sS")
		if j < 0 {
			return -1
		}
		i += j
		if i+len(sub) <= len(b) && bytes.EqualFold(b[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// checkBody is the one place Zuora errors are classified; it is the
// upstream.Client CheckBody hook. It returns nil for a good answer and for a
// 401 (the shared client retries that once with a new token).
func checkBody(status int, body []byte) *upstream.Error {
	if status >= 200 && status <= 299 && successTrue(body) {
		return nil // the common answer, without decoding it a second time
	}
	return decodeCheck(status, body)
}

// decodeCheck is checkBody deciding by the decoded envelope.
func decodeCheck(status int, body []byte) *upstream.Error {
	if status == http.StatusUnauthorized {
		return nil
	}
	ok := status >= 200 && status <= 299
	var env envelope
	trimmed := bytes.TrimSpace(body)
	parsed := len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &env) == nil
	failed := parsed && env.Success != nil && !bool(*env.Success)
	if ok && !failed {
		return nil
	}
	if parsed && env.FaultCode != "" {
		return faultError(status, env)
	}

	e := &upstream.Error{StatusCode: status, RequestID: env.RequestID}
	reasons := env.Reasons
	if len(reasons) == 0 {
		reasons = env.Errors
	}
	var msgs []string
	for _, r := range reasons {
		if e.Code == "" && r.Code != "" {
			e.Code = string(r.Code)
		}
		if r.Message != "" {
			msgs = append(msgs, r.Message)
		}
	}
	if len(msgs) == 0 && env.Message != "" {
		msgs = append(msgs, env.Message)
	}
	e.Message = strings.Join(msgs, "; ")
	if e.Message == "" && !parsed {
		e.Message = shorten(string(trimmed))
	}
	if env.ProcessID != "" {
		e.Message += " (processId " + env.ProcessID + ")"
		e.Message = strings.TrimSpace(e.Message)
	}

	// The HTTP status decides when it is unambiguous about retrying; the
	// category decides inside a 200 and for the other 4xx.
	switch {
	case status == http.StatusNotFound, status == http.StatusTooManyRequests,
		status == http.StatusRequestTimeout, status >= 500:
		e.Kind = upstream.KindForStatus(status)
	case e.Code != "" && Category(e.Code) < 0:
		e.Kind = kindForName(e.Code)
	case e.Code != "":
		e.Kind = kindForCategory(Category(e.Code))
	case ok:
		e.Kind = upstream.Permanent // success:false without a reason
	default:
		e.Kind = upstream.KindForStatus(status)
	}
	return e
}

// faultError classifies an Actions fault by its code, whatever the HTTP
// status (always 500): a malformed or invalid query fails the same way on
// every attempt, so only the transient codes (kindForName) retry.
func faultError(status int, env envelope) *upstream.Error {
	code := env.FaultCode
	if i := strings.LastIndexByte(code, ':'); i >= 0 {
		code = code[i+1:] // "fns:INVALID_FIELD"
	}
	e := &upstream.Error{StatusCode: status, Code: env.FaultCode, Message: env.FaultString, Kind: kindForName(code)}
	if e.Message == "" {
		e.Message = "fault " + env.FaultCode
	}
	for name := range env.Detail {
		if name == "MalformedQueryFault" || name == "InvalidQueryLocatorFault" {
			e.Kind = upstream.Permanent
		}
	}
	return e
}

func shorten(s string) string { return clip.Line(s, 200) }
