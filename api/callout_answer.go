package api

import (
	"strconv"

	"github.com/labstack/echo/v4"
)

// writeAnswer writes a calloutResponse: exactly what c.JSON writes, built
// without reflection when every string is plain ASCII that encoding/json
// writes as it is (the usual answer: ids, statuses). Anything else, and a
// pretty answer (?pretty, Debug), goes through c.JSON.
func writeAnswer(c echo.Context, code int, a calloutResponse) error {
	if c.Request().URL.RawQuery != "" || c.Echo().Debug {
		return c.JSON(code, a)
	}
	b, ok := appendAnswer(make([]byte, 0, 256), a)
	if !ok {
		return c.JSON(code, a)
	}
	return c.JSONBlob(code, b)
}

// appendAnswer appends a's JSON as json.Encoder writes it (field order,
// omitempty, the trailing newline); ok is false when a string would need
// escaping.
func appendAnswer(b []byte, a calloutResponse) (_ []byte, ok bool) {
	b = append(b, `{"success":`...)
	b = strconv.AppendBool(b, a.Success)
	ok = true
	field := func(name, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		ok = ok && plainJSON(v)
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":"`...)
		b = append(b, v...)
		b = append(b, '"')
	}
	field("status", a.Status, false)
	field("subscription", a.Subscription, true)
	field("account", a.Account, true)
	field("task_id", a.TaskID, true)
	field("reason", a.Reason, true)
	field("id", a.ID, true)
	return append(b, "}\n"...), ok
}

// plainJSON reports whether encoding/json (HTML-escaping, as echo's
// serializer does) writes s as it is.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
