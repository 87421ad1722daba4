// Package limio is zsync's client for Limio's Objects API: read a subscription
// and the objects related to it, write partial updates, create the objects a
// sync needs, and record a timeline event (Limio's Objects API).
//
// Authentication is OAuth2 client credentials at {BaseURL}/oauth2/token; the
// API lives under {BaseURL}/api. Every failure is an *upstream.Error,
// classified once in checkBody: 400 permanent, 404 not found, 502 and other
// 5xx, 408, 409 retryable, 429 throttled (Retry-After kept), and a 401 is
// retried once with a fresh token.
//
// # Field mapping
//
// fields.go holds, in one place, the path types, the field paths zsync writes
// and the shape of a partial PUT (Patch), plus NewID for deterministic ids.
//
// # Finding a subscription: the index
//
// A sync is triggered with a Limio id (sub-…), a Limio reference or a Zuora
// subscription number (A-S…). Only the id can be fetched directly: the Objects
// API has no server-side filter (third parties observed ?reference= answer
// 400), so anything else needs a scan of every subscription summary, page by
// page. To keep that rare, the client keeps an Index from key (reference,
// name, Zuora number) to subscription id:
//
//   - It is written by every scan, for every subscription the scan sees (one
//     scan warms the index for the whole tenant), and by Remember, which the
//     syncer calls after it creates a subscription.
//   - A hit is never trusted alone: Resolve fetches the subscription and checks
//     that the key still names it. A hit that is missing (404) or no longer
//     matches is stale: it is dropped and Resolve falls back to a scan.
//   - Losing the index (Redis flushed) costs only time: the next unknown key
//     scans and rebuilds it. An index that cannot be read is treated as a
//     miss, for the same reason.
//   - There is no negative caching: a key nobody knows is scanned every time,
//     because a subscription Limio creates itself (a shop order) can appear at
//     any moment and must be found rather than duplicated.
//
// RedisIndex is the production index (shared by every worker process).
//
// # Creating objects
//
// Limio documents no POST for subscriptions, customers, addresses or
// schedules. Client.Create is the one place that decides how zsync creates
// them (a PUT of the full object to a deterministic id); see its comment.
//
// # The write dialect
//
// Dialect (dialect.go) is the one seam for what no public source confirms:
// where a status is written, the related endpoint's path, where schedule
// entries are read, how the index's scan finds a subscription. Its zero value
// is zsync's assumptions; `zsync check` says which alternative a tenant needs,
// and the limio.* configuration keys choose it. A tenant that contradicts an
// assumption fails with an *AssumptionError (permanent, named), never a
// silent success or a "not found" that would make the syncer create a copy.
package limio
