package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// zsync's share of the tenant's concurrency: half of Zuora's default 40.
	if c.Zuora.Concurrency != 20 || c.Zuora.RatePerHour != 0 || c.Zuora.RatePerDay != 0 ||
		c.Zuora.RateSlowBelow != 0.1 || c.Zuora.ConcurrencyReserve != 0.25 || c.HTTP.Addr != ":8080" || c.Worker.Timeout != 2*time.Minute {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if got := strings.Join(c.LoopGuard.Sources, ","); got != "shop,salesforce" {
		t.Fatalf("loopguard.sources = %q; want shop,salesforce", got)
	}
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "zsync.yaml")
	if err := os.WriteFile(file, []byte("zuora:\n  base_url: https://rest.test.zuora.com\n  concurrency: 10\nhttp:\n  addr: \":9000\"\ncatalog:\n  offers:\n    prp-1: /offers2/monthly\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZSYNC_ZUORA_CONCURRENCY", "12")
	t.Setenv("ZSYNC_LOOPGUARD_INTEGRATION_USER_IDS", "u1, u2")
	flags := pflag.NewFlagSet("x", pflag.ContinueOnError)
	flags.String("http.addr", "", "")
	if err := flags.Parse([]string{"--http.addr=127.0.0.1:7000"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, flags)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Zuora.BaseURL != "https://rest.test.zuora.com" {
		t.Errorf("file value lost: zuora.base_url = %q", c.Zuora.BaseURL)
	}
	if c.Zuora.Concurrency != 12 {
		t.Errorf("env must beat file: zuora.concurrency = %d; want 12", c.Zuora.Concurrency)
	}
	if c.HTTP.Addr != "127.0.0.1:7000" {
		t.Errorf("flag must beat file: http.addr = %q", c.HTTP.Addr)
	}
	if got := strings.Join(c.LoopGuard.IntegrationUserIDs, "|"); got != "u1|u2" {
		t.Errorf("env list = %q; want u1|u2", got)
	}
	if c.Catalog.Offers["prp-1"] != "/offers2/monthly" {
		t.Errorf("catalog.offers = %v", c.Catalog.Offers)
	}
}

func TestValidateNamesKeys(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(Need{Ingress: true, Upstream: true})
	if err == nil {
		t.Fatal("Validate of empty credentials passed")
	}
	for _, key := range []string{"zuora.base_url", "limio.client_secret", "callout.username", "operator.token"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}

	c.Callout.AuthDisabled = true
	c.Log.Level = "loud"
	err = c.Validate(Need{Ingress: true})
	if err == nil || !strings.Contains(err.Error(), "log.level") || strings.Contains(err.Error(), "callout.username") {
		t.Fatalf("Validate = %v; want only log.level", err)
	}

	c.Log.Level = "info"
	c.HTTP.ShutdownTimeout = -time.Second
	if err := c.Validate(Need{Ingress: true}); err == nil || !strings.Contains(err.Error(), "http.shutdown_timeout") {
		t.Fatalf("Validate = %v; want http.shutdown_timeout refused", err)
	}
	c.HTTP.ShutdownTimeout = time.Second
	c.Callout.AuthDisabled = false
	c.Callout.HMACSecret = "s"
	c.Operator.Token = "t"
	if err := c.Validate(Need{Ingress: true}); err != nil {
		t.Fatalf("valid ingress config refused: %v", err)
	}
}

// zuora.environment names a base URL; a bad name or entity id is refused
// with its key; base_url is then not required.
func TestZuoraEnvironmentAndEntities(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Zuora.ClientID, c.Zuora.ClientSecret = "id", "secret"
	c.Limio.BaseURL, c.Limio.ClientID, c.Limio.ClientSecret = "https://x.prod.limio.com", "id", "secret"
	c.Zuora.Environment = "eu-sandbox"
	if err := c.Validate(Need{Upstream: true}); err != nil {
		t.Fatalf("an environment instead of base_url refused: %v", err)
	}
	c.Zuora.Environment, c.Zuora.EntityIDs = "mars", []string{"a b"}
	err = c.Validate(Need{Upstream: true})
	if err == nil || !strings.Contains(err.Error(), "zuora.environment") || !strings.Contains(err.Error(), "zuora.entity_ids") {
		t.Fatalf("Validate = %v; want zuora.environment and zuora.entity_ids named", err)
	}
}

func TestMissingExplicitFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil); err == nil {
		t.Fatal("Load of a missing explicit file succeeded")
	}
}

// The commented sample must load and carry every key the code knows.
func TestExampleFileHasEveryKey(t *testing.T) {
	raw, err := os.ReadFile("../zsync.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load("../zsync.example.yaml", nil); err != nil {
		t.Fatalf("sample does not load: %v", err)
	}
	text := string(raw)
	for _, key := range Keys() {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(text, leaf+":") {
			t.Errorf("zsync.example.yaml does not mention %s", key)
		}
	}
}

// loopguard.sources: [] turns the source check off; left out, the default
// sources apply.
func TestLoopGuardSourcesCanBeEmptied(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := dir + "/zsync.yaml"
	if err := os.WriteFile(file, []byte("loopguard:\n  sources: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.LoopGuard.Sources == nil || len(c.LoopGuard.Sources) != 0 {
		t.Fatalf("sources: [] → %#v; want an empty, non-nil list", c.LoopGuard.Sources)
	}
	d, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.LoopGuard.Sources) != 2 {
		t.Fatalf("unset → %v; want the defaults", d.LoopGuard.Sources)
	}
}

// Callout OAuth and HMAC settings zsync couldn't verify are refused at
// start-up, naming the key.
func TestValidateCalloutAuthNamesKeys(t *testing.T) {
	t.Parallel()
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Operator.Token = "t"
	c.Callout.OAuthClientID, c.Callout.OAuthClientSecret = "zuora", "0123456789abcdef"
	c.Callout.OAuthSigningKeys = []string{strings.Repeat("k", 32)}
	if err := c.Validate(Need{Ingress: true}); err != nil {
		t.Fatalf("OAuth-only config: %v", err)
	}
	for key, mod := range map[string]func(*Config){
		"callout.hmac_data":                    func(c *Config) { c.Callout.HMACData = "{{DataSource.Account.Id}}{{Request.Body}}" },
		"callout.hmac_value_format":            func(c *Config) { c.Callout.HMACValueFormat = "<Event.Timestamp> {{Request.HMAC.Signed}}" },
		"callout.oauth_signing_keys":           func(c *Config) { c.Callout.OAuthSigningKeys = nil },
		"callout.oauth_client_secret":          func(c *Config) { c.Callout.OAuthClientSecret = "short" },
		"callout.oauth_client_secret_previous": func(c *Config) { c.Callout.OAuthClientSecretPrevious = "short" },
		"callout.oauth_clients":                func(c *Config) { c.Callout.OAuthClients = []OAuthClient{{ClientID: "wf"}} },
		"callout.bearer_tokens":                func(c *Config) { c.Callout.BearerTokens = []string{"x"} },
		"callout.hmac_algorithm":               func(c *Config) { c.Callout.HMACAlgorithm = "sha3" },
	} {
		cc := *c
		cc.Callout.OAuthSigningKeys = append([]string(nil), c.Callout.OAuthSigningKeys...)
		mod(&cc)
		if err := cc.Validate(Need{Ingress: true}); err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("%s: Validate = %v; want it named", key, err)
		}
	}
	c.Callout.HMACAlgorithm, c.Callout.HMACData = "SHA-384", "{{Request.Headers.X-Ts}}.{{Request.Body}}"
	if err := c.Validate(Need{Ingress: true}); err != nil {
		t.Fatalf("SHA-384 over a header and the body: %v", err)
	}
}

// Zuora's limits: budgets are counts (0 = off), the slow-down threshold and
// the concurrency reserve fractions below 1; each bad value names its key.
func TestValidateZuoraLimits(t *testing.T) {
	t.Setenv("ZSYNC_ZUORA_RATE_PER_HOUR", "25000")
	t.Setenv("ZSYNC_ZUORA_RATE_PER_DAY", "50000")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Zuora.RatePerHour != 25000 || c.Zuora.RatePerDay != 50000 {
		t.Fatalf("budgets from the environment: %+v", c.Zuora)
	}
	c.Zuora.BaseURL, c.Zuora.ClientID, c.Zuora.ClientSecret = "https://rest.test.zuora.com", "id", "secret"
	c.Limio.BaseURL, c.Limio.ClientID, c.Limio.ClientSecret = "https://acme.prod.limio.com", "id", "secret"
	if err := c.Validate(Need{Upstream: true}); err != nil {
		t.Fatalf("valid limits refused: %v", err)
	}
	c.Zuora.RatePerHour, c.Zuora.RatePerDay = -1, -5
	c.Zuora.RateSlowBelow, c.Zuora.ConcurrencyReserve = 1, -0.1
	err = c.Validate(Need{Upstream: true})
	for _, key := range []string{"zuora.rate_per_hour", "zuora.rate_per_day", "zuora.rate_slow_below", "zuora.concurrency_reserve"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate = %v; want %s refused", err, key)
		}
	}
}
