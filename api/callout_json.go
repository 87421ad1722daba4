package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// jsonParams reads a flat JSON object. Zuora sends every merge field as a
// string, but a hand-written template may use numbers or booleans: those are
// kept as their JSON text. Nested objects and arrays are ignored.
//
// A callout body is a handful of plain keys and scalars, which flatJSON
// reads in one pass; anything else (an escaped key, a nested value, a syntax
// error) goes to jsonParamsDecoded, which decides and words the error.
func jsonParams(body []byte) (map[string]string, error) {
	if out, ok := flatJSON(body); ok {
		return out, nil
	}
	return jsonParamsDecoded(body)
}

// jsonParamsDecoded is jsonParams by encoding/json: the reference flatJSON
// must agree with (FuzzFlatJSON).
func jsonParamsDecoded(body []byte) (map[string]string, error) {
	// RawMessage values: only the scalars are decoded, and a nested object
	// costs a scan, not a tree of interfaces. Unmarshal also refuses data
	// after the object.
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("%w: json: %v", errMalformed, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("%w: json: want an object", errMalformed)
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		if s, ok := jsonScalar(string(v)); ok {
			out[k] = s
		}
	}
	return out, nil
}

// jsonScalar is the text of a valid JSON value: a string's value, a number's
// or boolean's JSON text (a part of v, unless decoded); ok is false for null,
// objects and arrays.
func jsonScalar(v string) (string, bool) {
	switch v[0] {
	case '"':
		if raw := v[1 : len(v)-1]; strings.IndexByte(raw, '\\') < 0 && utf8.ValidString(raw) {
			return raw, true // no escapes, valid UTF-8: the text is the value
		}
		var str string
		if err := json.Unmarshal([]byte(v), &str); err == nil {
			return str, true
		}
	case 't', 'f':
		return v, true // true, false
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return v, true // a number, as its JSON text
	}
	return "", false
}

// flatJSON reads an object whose keys are plain strings (no escapes, valid
// UTF-8) and whose values are scalars, with what jsonParamsDecoded would
// return; ok is false for any other input, valid or not. A repeated key
// takes its last value, as encoding/json does. Keys and values are parts of
// one copy of body, not a string each.
func flatJSON(body []byte) (map[string]string, bool) {
	i := skipJSONSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return nil, false
	}
	src := string(body)
	out := make(map[string]string, 8)
	i = skipJSONSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return out, skipJSONSpace(body, i+1) == len(body)
	}
	for {
		end, plain := jsonStringEnd(body, i)
		if end < 0 || !plain || !utf8.Valid(body[i+1:end-1]) {
			return nil, false
		}
		key := src[i+1 : end-1]
		i = skipJSONSpace(body, end)
		if i == len(body) || body[i] != ':' {
			return nil, false
		}
		i = skipJSONSpace(body, i+1)
		end = jsonScalarEnd(body, i)
		if end < 0 {
			return nil, false
		}
		v := src[i:end]
		if v[0] == '"' && strings.IndexByte(v, '\\') >= 0 && !json.Valid(body[i:end]) {
			return nil, false // a bad escape: the decoder words the error
		}
		if s, ok := jsonScalar(v); ok {
			out[key] = s
		} else {
			delete(out, key) // null replaces an earlier value and is dropped with it
		}
		i = skipJSONSpace(body, end)
		if i == len(body) {
			return nil, false
		}
		switch body[i] {
		case ',':
			i = skipJSONSpace(body, i+1)
		case '}':
			return out, skipJSONSpace(body, i+1) == len(body)
		default:
			return nil, false
		}
	}
}

// skipJSONSpace returns the index of the first byte from i on that is not
// JSON whitespace.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonStringEnd returns the index after the string starting at b[i] ('"')
// and whether it has no escapes; -1 when there is no string there or it has a
// control character or no end. Escapes are not checked, only skipped.
func jsonStringEnd(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return -1, false
	}
	plain := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, plain
		case c == '\\':
			plain = false
			j++
		case c < 0x20:
			return -1, false
		}
	}
	return -1, false
}

// jsonScalarEnd returns the index after the string, number, true, false or
// null starting at b[i]; -1 for anything else (objects and arrays included).
func jsonScalarEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := jsonStringEnd(b, i)
		return end
	case 't':
		return jsonLiteralEnd(b, i, "true")
	case 'f':
		return jsonLiteralEnd(b, i, "false")
	case 'n':
		return jsonLiteralEnd(b, i, "null")
	}
	return jsonNumberEnd(b, i)
}

func jsonLiteralEnd(b []byte, i int, lit string) int {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// jsonNumberEnd returns the index after the number starting at b[i]
// (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), -1 when there is none.
func jsonNumberEnd(b []byte, i int) int {
	digits := func(j int) int { // index after a run of digits from j; j when none
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return -1
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}
