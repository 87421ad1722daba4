package api

import (
	"crypto/rand"

	"github.com/labstack/echo/v4"
)

// maxRequestIDLen bounds a client's X-Request-Id: long enough for a UUID, a
// W3C trace id, a load balancer's "Root=1-…" or any id built of those, short
// enough that a log line stays a log line.
const maxRequestIDLen = 128

// requestIDs gives every request an id: the client's X-Request-Id when it is
// a sane one, else a fresh one. The id is echoed in the response and logged,
// so a client's value is taken only when it is at most maxRequestIDLen
// characters of [A-Za-z0-9._:-] (no spaces, control characters or anything a
// log viewer or header parser could take for structure). Any other value is
// dropped unseen: neither logged nor echoed, and replaced in the request too,
// so nothing further in the chain reads it.
func requestIDs(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		id := r.Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = rand.Text()
		}
		r.Header.Set(echo.HeaderXRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '.', b == '_', b == ':', b == '-':
		default:
			return false
		}
	}
	return true
}

// requestID is the id requestIDs settled on.
func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}
