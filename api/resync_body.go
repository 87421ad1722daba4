package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/zsync/zsync/internal/clip"
)

// The body of POST /v1/resyncs is decoded as a stream, token by token, so a
// list of a million ids costs the ids (as strings) and not the body, and it
// has its own limits instead of MaxBodyBytes: at most Config.MaxResyncIDs
// ids, in at most resyncMaxBytes bytes.

// resyncBytesPerID is the room a body gets per id: the longest id
// (worker.MaxIDLen, 64), its quotes and comma, and pretty-printing.
const resyncBytesPerID = 128

// resyncMaxBytes caps the body of POST /v1/resyncs.
func (c Config) resyncMaxBytes() int64 {
	return max(c.MaxBodyBytes, int64(c.MaxResyncIDs)*resyncBytesPerID)
}

// isResyncStart reports whether c is POST /v1/resyncs, whose body limit is
// resyncMaxBytes (bodyLimit).
func isResyncStart(c echo.Context) bool {
	return c.Path() == resyncsPath && c.Request().Method == http.MethodPost
}

const resyncsPath = "/v1/resyncs"

// errTooManyIDs: the ids are over Config.MaxResyncIDs (413).
var errTooManyIDs = errors.New("too many ids")

// overResyncLimit reports whether err is decodeResync's over either limit.
func overResyncLimit(err error) bool {
	var tooBig *http.MaxBytesError
	return errors.Is(err, errTooManyIDs) || errors.As(err, &tooBig)
}

// resyncTooLarge is the 413 of a resync body over either limit; it names
// both, so the operator knows to split the list.
func (c Config) resyncTooLarge() *echo.HTTPError {
	return errStatus(http.StatusRequestEntityTooLarge, fmt.Sprintf(
		"a resync takes at most %d ids in a body of at most %d bytes: split the list into several resyncs",
		c.MaxResyncIDs, c.resyncMaxBytes()))
}

// decodeResync reads the JSON object of the body, as json.Decoder with
// DisallowUnknownFields would (field names case-insensitive, null as
// absent, anything after the object ignored), but never holds more than
// maxIDs ids. It returns errTooManyIDs, or the reader's error (a
// *http.MaxBytesError over the body limit), as is.
func decodeResync(body io.Reader, maxIDs int) (resyncRequest, error) {
	var r resyncRequest
	dec := json.NewDecoder(body)
	if err := wantDelim(dec, '{', "an object"); err != nil {
		return r, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return r, err
		}
		key, _ := tok.(string) // a key is always a string: Token fails otherwise
		switch strings.ToLower(key) {
		case "ids":
			r.IDs, err = decodeIDs(dec, maxIDs)
		case "status":
			err = decodeString(dec, &r.Status, key)
		case "updated_since":
			err = decodeString(dec, &r.UpdatedSince, key)
		default:
			err = fmt.Errorf("unknown field %q", clip.To(key, 40))
		}
		if err != nil {
			return r, err
		}
	}
	_, err := dec.Token() // the closing }
	return r, err
}

// decodeIDs reads the array of ids: nil for null, non-nil (maybe empty)
// otherwise.
func decodeIDs(dec *json.Decoder, maxIDs int) ([]string, error) {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return nil, err
	case tok == nil:
		return nil, nil
	case tok != json.Delim('['):
		return nil, errors.New("ids must be an array of strings")
	}
	ids := []string{}
	for dec.More() {
		if len(ids) == maxIDs {
			return nil, errTooManyIDs
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		id, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("ids must hold strings only, not %s", tokenKind(tok))
		}
		ids = append(ids, id)
	}
	_, err = dec.Token() // the closing ]
	return ids, err
}

// decodeString reads a string or null (left as it is) into dst.
func decodeString(dec *json.Decoder, dst *string, key string) error {
	var v *string
	if err := dec.Decode(&v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return fmt.Errorf("%s must be a string", key)
		}
		return err
	}
	if v != nil {
		*dst = *v
	}
	return nil
}

func wantDelim(dec *json.Decoder, d json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("want %s, not %v", what, tokenKind(tok))
	}
	return nil
}

// tokenKind names a token for an error, without echoing a long value.
func tokenKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			return "an array"
		case '{':
			return "an object"
		}
		return string(t)
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}
