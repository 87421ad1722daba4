package api

import (
	"cmp"
	"crypto/md5"  //nolint:gosec // offered because Zuora lets the admin choose MD5 for callout HMACs
	"crypto/sha1" //nolint:gosec // offered because Zuora lets the admin choose SHA-1 for callout HMACs
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"net/netip"
	"strings"
	"time"

	"github.com/zsync/zsync/internal/field"
	"github.com/zsync/zsync/syncer"
)

// Config is the ingress's settings, independent of the listen address (the
// caller owns the listener).
type Config struct {
	// Callout authentication (Zuora → zsync). The credentials (Basic, OAuth
	// 2.0 clients, static bearer tokens) are alternatives: a callout carries
	// one of those configured. HMAC, when configured, is checked on top.
	CalloutUsername string
	CalloutPassword string
	HMACSecret      string
	HMACHeader      string // default "X-Zuora-Signature"
	HMACAlgorithm   string // md5 | sha1 | sha224 | sha256 (default) | sha384 | sha512
	HMACEncoding    string // hex (default) | base64
	// HMACValueFormat is the Header Value typed in Zuora, with
	// {{Request.HMAC.Signed}} where the signature goes (default: the
	// signature alone).
	HMACValueFormat string
	// HMACData is the Data typed in Zuora: literal text, {{Request.Body}}
	// and {{Request.Headers.<name>}} (default {{Request.Body}}).
	HMACData string

	// OAuthClients may fetch tokens at POST /oauth2/token (client
	// credentials). Tokens are JWTs signed with OAuthSigningKeys[0] and
	// accepted under any of them, so every ingress verifies them alone and
	// a key can be rotated by putting the new one first.
	OAuthClients     []OAuthClient
	OAuthSigningKeys []string
	OAuthTokenTTL    time.Duration // default 1h, Limio's expires_in
	// BearerTokens are static tokens accepted as Authorization: Bearer.
	BearerTokens []string

	// AllowIPs limits callouts to these IPs or CIDRs (empty: any source).
	AllowIPs []string
	// TrustedProxies are the IPs or CIDRs of reverse proxies whose
	// X-Forwarded-For is believed when working out the client IP. Empty: the
	// TCP peer is the client (X-Forwarded-For is ignored, it is spoofable).
	TrustedProxies []string

	// AuthDisabled turns off callout authentication (zsync dev), and operator
	// authentication too unless operator credentials are set: those are
	// always required once configured. It must be set explicitly; an empty
	// config is refused.
	AuthDisabled bool

	// Operator API, /monitor and /metrics: a bearer token for scripts and/or
	// Basic credentials for browsers. Separate from the callout credentials.
	OperatorToken    string
	OperatorUsername string
	OperatorPassword string

	// MaxBodyBytes caps request bodies (default 64 KiB), except that of
	// POST /v1/resyncs, which MaxResyncIDs sizes.
	MaxBodyBytes int64
	// MaxResyncIDs caps the ids of one POST /v1/resyncs (default 1,000,000).
	// Its body is streamed and may be up to MaxResyncIDs × 128 bytes (the
	// longest id quoted, a comma and indentation), at least MaxBodyBytes.
	MaxResyncIDs int

	// Ingress loop guard: a callout body naming one of these order sources
	// (Source__c / InitiatedSource__c, case-insensitive; default shop,
	// salesforce) or created by one of these Zuora users is skipped.
	LoopSources        []string
	IntegrationUserIDs []string
	// IntegrationUserNames match a creator rendered as a user name or e-mail
	// (legacy <Subscription.CreatedBy>-style merge fields).
	IntegrationUserNames []string
}

// OAuthClient is one client of the token endpoint. Secrets holds the
// current secret and, while it rotates, the previous one: both are taken.
type OAuthClient struct {
	ID      string
	Secrets []string
}

const (
	defaultHMACHeader   = "X-Zuora-Signature"
	defaultMaxBodyBytes = 64 << 10
	defaultMaxResyncIDs = 1_000_000
	defaultTokenTTL     = time.Hour
	// maxMaxResyncIDs keeps a misconfigured limit from letting one request
	// hold gigabytes of ids.
	maxMaxResyncIDs = 10_000_000
	// Minimum lengths: the token endpoint is reachable by anyone allowed to
	// send callouts, and HS256 wants a key of at least 256 bits.
	minClientSecretLen = 16
	minSigningKeyLen   = 32
)

// DefaultConfig is every default of the ingress (config/ takes its defaults
// from here); the loop sources are the syncer's.
func DefaultConfig() Config {
	return Config{
		HMACHeader:      defaultHMACHeader,
		HMACAlgorithm:   "sha256",
		HMACEncoding:    "hex",
		HMACValueFormat: signedMarker,
		HMACData:        bodyMarker,
		OAuthTokenTTL:   defaultTokenTTL,
		MaxBodyBytes:    defaultMaxBodyBytes,
		MaxResyncIDs:    defaultMaxResyncIDs,
		LoopSources:     syncer.DefaultLoopSources,
	}
}

// withDefaults fills zero values from DefaultConfig; LoopSources only when
// nil (empty turns the source check off).
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.HMACHeader = cmp.Or(c.HMACHeader, d.HMACHeader)
	c.HMACAlgorithm = cmp.Or(c.HMACAlgorithm, d.HMACAlgorithm)
	c.HMACEncoding = cmp.Or(c.HMACEncoding, d.HMACEncoding)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, d.MaxBodyBytes)
	c.MaxResyncIDs = cmp.Or(c.MaxResyncIDs, d.MaxResyncIDs)
	c.HMACValueFormat = cmp.Or(c.HMACValueFormat, d.HMACValueFormat)
	c.HMACData = cmp.Or(c.HMACData, d.HMACData)
	c.OAuthTokenTTL = cmp.Or(c.OAuthTokenTTL, d.OAuthTokenTTL)
	if c.LoopSources == nil {
		c.LoopSources = d.LoopSources
	}
	return c
}

// Validate reports every problem with the config (after defaults), naming
// the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs field.Errors
	bad := errs.Add
	basic := c.CalloutUsername != "" || c.CalloutPassword != ""
	if basic && (c.CalloutUsername == "" || c.CalloutPassword == "") {
		bad("CalloutUsername", "CalloutUsername and CalloutPassword must be set together")
	}
	if !c.AuthDisabled {
		if !basic && c.HMACSecret == "" && len(c.OAuthClients) == 0 && len(c.BearerTokens) == 0 {
			bad("CalloutUsername", "no callout authentication: set CalloutUsername/CalloutPassword, OAuthClients, BearerTokens and/or HMACSecret (or AuthDisabled, never in production)")
		}
		opBasic := c.OperatorUsername != "" && c.OperatorPassword != ""
		if c.OperatorToken == "" && !opBasic {
			bad("OperatorToken", "no operator credentials: set OperatorToken and/or OperatorUsername/OperatorPassword")
		}
	}
	if (c.OperatorUsername == "") != (c.OperatorPassword == "") {
		bad("OperatorUsername", "OperatorUsername and OperatorPassword must be set together")
	}
	if hashFor(c.HMACAlgorithm) == nil {
		bad("HMACAlgorithm", "must be md5, sha1, sha224, sha256, sha384 or sha512, not %q", c.HMACAlgorithm)
	}
	if _, _, err := parseValueFormat(c.HMACValueFormat); err != nil {
		bad("HMACValueFormat", "%v", err)
	}
	if _, err := parseHMACData(c.HMACData); err != nil {
		bad("HMACData", "%v", err)
	}
	c.validateOAuth(&errs)
	switch strings.ToLower(c.HMACEncoding) {
	case "hex", "base64":
	default:
		bad("HMACEncoding", "must be hex or base64, not %q", c.HMACEncoding)
	}
	if strings.TrimSpace(c.HMACHeader) == "" || strings.ContainsAny(c.HMACHeader, " :\r\n") {
		bad("HMACHeader", "must be a header name, not %q", c.HMACHeader)
	}
	if c.MaxBodyBytes < 1024 {
		bad("MaxBodyBytes", "must be at least 1024, not %d", c.MaxBodyBytes)
	}
	if c.MaxResyncIDs < 1 || c.MaxResyncIDs > maxMaxResyncIDs {
		bad("MaxResyncIDs", "must be between 1 and %d, not %d", maxMaxResyncIDs, c.MaxResyncIDs)
	}
	if _, err := parsePrefixes(c.AllowIPs); err != nil {
		bad("AllowIPs", "%v", err)
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		bad("TrustedProxies", "%v", err)
	}
	return errs.Err()
}

// validateOAuth checks the token endpoint's settings. A finding about one
// client carries its index, and about one secret the secret's too, so that
// config/ can name the key each came from.
func (c Config) validateOAuth(errs *field.Errors) {
	bad := errs.Add
	seen := map[string]bool{}
	for i, cl := range c.OAuthClients {
		switch {
		case strings.TrimSpace(cl.ID) == "":
			errs.AddAt("OAuthClients", []int{i}, "client #%d has no id", i+1)
		case seen[cl.ID]:
			errs.AddAt("OAuthClients", []int{i}, "client %q is configured twice", cl.ID)
		}
		seen[cl.ID] = true
		n := 0
		for j, sec := range cl.Secrets {
			if sec == "" {
				continue
			}
			n++
			if len(sec) < minClientSecretLen {
				errs.AddAt("OAuthClients", []int{i, j}, "a secret of client %q is shorter than %d characters", cl.ID, minClientSecretLen)
			}
		}
		if n == 0 {
			errs.AddAt("OAuthClients", []int{i}, "client %q has no secret", cl.ID)
		}
	}
	if len(c.OAuthClients) > 0 && len(c.OAuthSigningKeys) == 0 {
		bad("OAuthSigningKeys", "OAuth clients are configured but no signing key: set one of at least %d characters, the same in every ingress", minSigningKeyLen)
	}
	for _, k := range c.OAuthSigningKeys {
		if len(k) < minSigningKeyLen {
			bad("OAuthSigningKeys", "every signing key must be at least %d characters", minSigningKeyLen)
			break
		}
	}
	if c.OAuthTokenTTL < time.Minute || c.OAuthTokenTTL > 24*time.Hour {
		bad("OAuthTokenTTL", "must be between 1m and 24h, not %s", c.OAuthTokenTTL)
	}
	for _, t := range c.BearerTokens {
		if len(t) < minClientSecretLen {
			bad("BearerTokens", "every bearer token must be at least %d characters", minClientSecretLen)
			break
		}
	}
}

// hashFor returns the hash constructor for an HMAC algorithm name (Zuora's
// spellings: MD5, SHA-1 … SHA-512), or nil.
func hashFor(alg string) func() hash.Hash {
	switch strings.ToLower(strings.ReplaceAll(alg, "-", "")) {
	case "md5":
		return md5.New
	case "sha1":
		return sha1.New
	case "sha224":
		return sha256.New224
	case "sha256":
		return sha256.New
	case "sha384":
		return sha512.New384
	case "sha512":
		return sha512.New
	}
	return nil
}

// parsePrefixes parses IPs and CIDRs; a bare IP is a single-address prefix.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP or CIDR", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP or CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// operatorOpen reports whether the operator endpoints take requests without
// credentials: only with authentication disabled and no operator credential
// configured (zsync dev).
func (c Config) operatorOpen() bool {
	return c.AuthDisabled && c.OperatorToken == "" && c.OperatorUsername == ""
}
