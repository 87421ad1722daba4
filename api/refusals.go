package api

import "github.com/labstack/echo/v4"

// Why a handler refused a callout (or a token request): the reason label of
// zsync_callouts_refused_total, beside the status-derived Refusal* reasons
// of httpmetrics.go. Zuora does not retry a 4xx, so each of these is a change
// that waits for the sweep: the reasons say which configuration to fix.
const (
	reasonIPNotAllowed   = RefusalSourceNotAllowed
	reasonBadBasic       = RefusalBadCredentials
	reasonBadToken       = "bad_token"
	reasonExpiredToken   = "expired_token"
	reasonBadSignature   = RefusalBadSignature
	reasonBodyTooLarge   = RefusalBodyTooLarge
	reasonMediaType      = RefusalUnsupportedType
	reasonMalformed      = "malformed_body"
	reasonNoSubscription = "no_subscription"
	reasonAccountOnly    = "account_without_subscription"
	reasonInternalID     = "subscription_id_not_number"
	reasonInvalidID      = RefusalInvalidID
	reasonInvalidOrder   = "invalid_order_number"
	reasonUnsignedPath   = "path_not_signed"
	reasonTokenRequest   = "token_bad_request"
	reasonTokenClient    = "token_invalid_client"
)

// refused names why the request being handled is refused and counts it at
// once, before the 4xx is written (so a client that reads the answer sees the
// count); the HTTP metrics middleware counts only what no handler named.
func (s *server) refused(c echo.Context, reason string) {
	refuseFor(c, reason)
	c.Set(ctxRefusalCounted, true)
	if s.deps.HTTPMetrics != nil {
		s.deps.HTTPMetrics.CalloutRefused(reason)
	}
}

// handlerReasons are the reasons above, declared with the others.
var handlerReasons = []string{
	reasonIPNotAllowed, reasonBadBasic, reasonBadToken, reasonExpiredToken, reasonBadSignature, reasonBodyTooLarge,
	reasonMediaType, reasonMalformed, reasonNoSubscription, reasonAccountOnly, reasonInternalID, reasonInvalidID,
	reasonInvalidOrder, reasonUnsignedPath, reasonTokenRequest, reasonTokenClient,
}
