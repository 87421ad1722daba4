package api

// Refusals counts callouts (and token requests) the ingress turned away, by
// reason. Zuora does not retry a 4xx, so each of these is a change that
// waits for the sweep: the reasons say which configuration to fix.
type Refusals interface {
	CalloutRefused(reason string)
}

// Refusal reasons (the metric's label values).
const (
	reasonIPNotAllowed   = "ip_not_allowed"
	reasonBadBasic       = "bad_basic_credentials"
	reasonBadToken       = "bad_token"
	reasonExpiredToken   = "expired_token"
	reasonBadSignature   = "bad_signature"
	reasonBodyTooLarge   = "body_too_large"
	reasonMediaType      = "unsupported_media_type"
	reasonMalformed      = "malformed_body"
	reasonNoSubscription = "no_subscription"
	reasonAccountOnly    = "account_without_subscription"
	reasonInternalID     = "subscription_id_not_number"
	reasonInvalidID      = "invalid_id"
	reasonInvalidOrder   = "invalid_order_number"
	reasonUnsignedPath   = "path_not_signed"
	reasonTokenRequest   = "token_bad_request"
	reasonTokenClient    = "token_invalid_client"
)

// refused counts one refusal (no-op without Deps.Refusals).
func (s *server) refused(reason string) {
	if s.deps.Refusals != nil {
		s.deps.Refusals.CalloutRefused(reason)
	}
}
