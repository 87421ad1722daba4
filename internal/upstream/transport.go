package upstream

import "net/http"

// idlePerHost is how many idle connections to one API a client keeps:
// about as many requests as zsync has in flight to it (a worker's
// concurrency times the calls a sync makes at once). http.DefaultTransport
// keeps 2, so under load nearly every request dialled a connection and
// closed it after, which cost more CPU than its JSON (issue #14's profile).
const idlePerHost = 128

// NewTransport is the transport the API clients use unless given an
// http.Client: http.DefaultTransport's settings with an idle pool per host
// that fits zsync's concurrency.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * idlePerHost
	t.MaxIdleConnsPerHost = idlePerHost
	return t
}
