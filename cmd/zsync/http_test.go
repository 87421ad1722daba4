package main

import (
	"net/http"
	"testing"
	"time"
)

// Every listener bounds the time to read a request, body included, under
// what a slow client could otherwise hold (the HMAC is checked only once the
// body is in).
func TestHTTPServerBoundsRequestReading(t *testing.T) {
	t.Parallel()
	srv := newHTTPServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.ReadTimeout > 30*time.Second {
		t.Fatalf("read header timeout %v, read timeout %v; want both set, the latter ≤ 30 s", srv.ReadHeaderTimeout, srv.ReadTimeout)
	}
}
