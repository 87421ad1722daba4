package api

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{CalloutUsername: "u", CalloutPassword: "p", OperatorToken: "t"}
	tests := []struct {
		name    string
		give    func(c *Config)
		wantErr string // "" = valid; else a substring
	}{
		{name: "basic + token", give: func(*Config) {}},
		{name: "hmac only", give: func(c *Config) { c.CalloutUsername, c.CalloutPassword, c.HMACSecret = "", "", "s" }},
		{name: "operator basic only", give: func(c *Config) { c.OperatorToken, c.OperatorUsername, c.OperatorPassword = "", "a", "b" }},
		{name: "auth disabled, nothing else", give: func(c *Config) { *c = Config{AuthDisabled: true} }},
		{name: "no callout auth", give: func(c *Config) { c.CalloutUsername, c.CalloutPassword = "", "" }, wantErr: "CalloutUsername: no callout authentication"},
		{name: "half basic", give: func(c *Config) { c.CalloutPassword = "" }, wantErr: "CalloutUsername: CalloutUsername and CalloutPassword"},
		{name: "no operator credentials", give: func(c *Config) { c.OperatorToken = "" }, wantErr: "OperatorToken: no operator credentials"},
		{name: "half operator basic", give: func(c *Config) { c.OperatorUsername = "a" }, wantErr: "OperatorUsername:"},
		{name: "bad algorithm", give: func(c *Config) { c.HMACAlgorithm = "sha3-256" }, wantErr: `HMACAlgorithm: must be md5, sha1, sha224, sha256, sha384 or sha512, not "sha3-256"`},
		{name: "md5 ok", give: func(c *Config) { c.HMACAlgorithm = "MD5" }},
		{name: "sha-224 ok", give: func(c *Config) { c.HMACAlgorithm = "SHA-224" }},
		{name: "sha-384 ok", give: func(c *Config) { c.HMACAlgorithm = "SHA-384" }},
		{name: "value format around the signature", give: func(c *Config) {
			c.HMACValueFormat = "The algorithm is SHA-256 and the signed data is {{Request.HMAC.Signed}}"
		}},
		{name: "value format without the signature", give: func(c *Config) { c.HMACValueFormat = "sig" }, wantErr: "HMACValueFormat: must contain {{Request.HMAC.Signed}} exactly once"},
		{name: "value format twice", give: func(c *Config) { c.HMACValueFormat = "{{Request.HMAC.Signed}}{{Request.HMAC.Signed}}" }, wantErr: "HMACValueFormat:"},
		{name: "value format with another merge field", give: func(c *Config) {
			c.HMACValueFormat = "t=<Event.Timestamp>,v1={{Request.HMAC.Signed}}"
		}, wantErr: "HMACValueFormat: <Event.Timestamp> can't be verified"},
		{name: "data with headers", give: func(c *Config) { c.HMACData = "{{Request.Headers.X-Ts}}.{{Request.Body}}" }},
		{name: "data with a data-source field", give: func(c *Config) {
			c.HMACData = "{{DataSource.Subscription.Name}}{{Request.Body}}"
		}, wantErr: "HMACData: {{DataSource.Subscription.Name}} can't be verified"},
		{name: "data with a legacy field", give: func(c *Config) { c.HMACData = "<Tenant.ID>{{Request.Body}}" }, wantErr: "HMACData: <Tenant.ID> can't be verified"},
		{name: "data with an empty header", give: func(c *Config) { c.HMACData = "{{Request.Headers.}}" }, wantErr: "HMACData:"},
		{name: "oauth only", give: func(c *Config) {
			c.CalloutUsername, c.CalloutPassword = "", ""
			c.OAuthClients = []OAuthClient{{ID: "zuora", Secrets: []string{strings.Repeat("s", 16)}}}
			c.OAuthSigningKeys = []string{strings.Repeat("k", 32)}
		}},
		{name: "static bearer only", give: func(c *Config) {
			c.CalloutUsername, c.CalloutPassword = "", ""
			c.BearerTokens = []string{strings.Repeat("t", 16)}
		}},
		{name: "oauth without signing key", give: func(c *Config) {
			c.OAuthClients = []OAuthClient{{ID: "zuora", Secrets: []string{strings.Repeat("s", 16)}}}
		}, wantErr: "OAuthSigningKeys: OAuth clients are configured but no signing key"},
		{name: "short signing key", give: func(c *Config) {
			c.OAuthClients = []OAuthClient{{ID: "zuora", Secrets: []string{strings.Repeat("s", 16)}}}
			c.OAuthSigningKeys = []string{strings.Repeat("k", 32), "short"}
		}, wantErr: "OAuthSigningKeys: every signing key must be at least 32"},
		{name: "client without secret", give: func(c *Config) {
			c.OAuthClients = []OAuthClient{{ID: "zuora"}}
			c.OAuthSigningKeys = []string{strings.Repeat("k", 32)}
		}, wantErr: `OAuthClients: client "zuora" has no secret`},
		{name: "short client secret", give: func(c *Config) {
			c.OAuthClients = []OAuthClient{{ID: "zuora", Secrets: []string{"short"}}}
			c.OAuthSigningKeys = []string{strings.Repeat("k", 32)}
		}, wantErr: `OAuthClients: a secret of client "zuora" is shorter`},
		{name: "duplicate client", give: func(c *Config) {
			cl := OAuthClient{ID: "zuora", Secrets: []string{strings.Repeat("s", 16)}}
			c.OAuthClients = []OAuthClient{cl, cl}
			c.OAuthSigningKeys = []string{strings.Repeat("k", 32)}
		}, wantErr: `OAuthClients: client "zuora" is configured twice`},
		{name: "token ttl too long", give: func(c *Config) { c.OAuthTokenTTL = 48 * time.Hour }, wantErr: "OAuthTokenTTL:"},
		{name: "short static token", give: func(c *Config) { c.BearerTokens = []string{"x"} }, wantErr: "BearerTokens:"},
		{name: "sha512 ok", give: func(c *Config) { c.HMACAlgorithm = "SHA-512" }},
		{name: "bad encoding", give: func(c *Config) { c.HMACEncoding = "base32" }, wantErr: "HMACEncoding:"},
		{name: "bad header", give: func(c *Config) { c.HMACHeader = "X Sig" }, wantErr: "HMACHeader:"},
		{name: "small body limit", give: func(c *Config) { c.MaxBodyBytes = 10 }, wantErr: "MaxBodyBytes:"},
		{name: "bad allow ip", give: func(c *Config) { c.AllowIPs = []string{"10.0.0.0/8", "nope"} }, wantErr: `AllowIPs: "nope"`},
		{name: "good allow ips", give: func(c *Config) { c.AllowIPs = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"} }},
		{name: "bad proxy", give: func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/99"} }, wantErr: "TrustedProxies:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tt.give(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v; want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
