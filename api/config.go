package api

import (
	"crypto/sha1" //nolint:gosec // offered because Zuora lets the admin choose SHA-1 for callout HMACs
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strings"
)

// Config is the ingress's settings, independent of the listen address (the
// caller owns the listener).
type Config struct {
	// Callout authentication (Zuora → zsync). Basic and HMAC may be combined:
	// then both must pass.
	CalloutUsername string
	CalloutPassword string
	HMACSecret      string
	HMACHeader      string // default "X-Zuora-Signature"
	HMACAlgorithm   string // sha256 (default) | sha512 | sha1
	HMACEncoding    string // hex (default) | base64

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

	// MaxBodyBytes caps request bodies (default 64 KiB).
	MaxBodyBytes int64

	// Ingress loop guard: a callout body naming one of these order sources
	// (Source__c / InitiatedSource__c, case-insensitive; default shop,
	// salesforce) or created by one of these Zuora users is skipped.
	LoopSources        []string
	IntegrationUserIDs []string
}

const (
	defaultHMACHeader   = "X-Zuora-Signature"
	defaultMaxBodyBytes = 64 << 10
)

var defaultLoopSources = []string{"shop", "salesforce"}

// withDefaults fills zero values.
func (c Config) withDefaults() Config {
	if c.HMACHeader == "" {
		c.HMACHeader = defaultHMACHeader
	}
	if c.HMACAlgorithm == "" {
		c.HMACAlgorithm = "sha256"
	}
	if c.HMACEncoding == "" {
		c.HMACEncoding = "hex"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	if c.LoopSources == nil {
		c.LoopSources = defaultLoopSources
	}
	return c
}

// Validate reports every problem with the config (after defaults), naming
// the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	basic := c.CalloutUsername != "" || c.CalloutPassword != ""
	if basic && (c.CalloutUsername == "" || c.CalloutPassword == "") {
		bad("CalloutUsername", "CalloutUsername and CalloutPassword must be set together")
	}
	if !c.AuthDisabled {
		if !basic && c.HMACSecret == "" {
			bad("CalloutUsername", "no callout authentication: set CalloutUsername/CalloutPassword and/or HMACSecret (or AuthDisabled, never in production)")
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
		bad("HMACAlgorithm", "must be sha256, sha512 or sha1, not %q", c.HMACAlgorithm)
	}
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
	if _, err := parsePrefixes(c.AllowIPs); err != nil {
		bad("AllowIPs", "%v", err)
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		bad("TrustedProxies", "%v", err)
	}
	return errors.Join(errs...)
}

// hashFor returns the hash constructor for an HMAC algorithm name, or nil.
func hashFor(alg string) func() hash.Hash {
	switch strings.ToLower(strings.ReplaceAll(alg, "-", "")) {
	case "sha256":
		return sha256.New
	case "sha512":
		return sha512.New
	case "sha1":
		return sha1.New
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
