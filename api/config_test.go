package api

import (
	"strings"
	"testing"
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
		{name: "bad algorithm", give: func(c *Config) { c.HMACAlgorithm = "md5" }, wantErr: `HMACAlgorithm: must be sha256, sha512 or sha1, not "md5"`},
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
