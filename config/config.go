// Package config is the only importer of viper. It reads defaults, an
// optional zsync.yaml, ZSYNC_* environment variables and command-line flags
// (in rising precedence) into one typed Config, and validates it with
// messages that name the offending key. Nothing reads viper after startup:
// cmd/zsync hands each component its section.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/zsync/zsync/zuora"
)

// Config is every setting of zsync. Keys are the mapstructure names joined by
// dots (zuora.base_url); the environment variable is ZSYNC_ + the key in upper
// case with dots as underscores (ZSYNC_ZUORA_BASE_URL).
type Config struct {
	Redis     Redis     `mapstructure:"redis"`
	HTTP      HTTP      `mapstructure:"http"`
	Zuora     Zuora     `mapstructure:"zuora"`
	Limio     Limio     `mapstructure:"limio"`
	Callout   Callout   `mapstructure:"callout"`
	Operator  Operator  `mapstructure:"operator"`
	LoopGuard LoopGuard `mapstructure:"loopguard"`
	Catalog   Catalog   `mapstructure:"catalog"`
	Worker    Worker    `mapstructure:"worker"`
	Sweep     Sweep     `mapstructure:"sweep"`
	Log       Log       `mapstructure:"log"`
	Otel      Otel      `mapstructure:"otel"`
}

// Redis is where the queues, locks, epochs and outcomes live. The first of
// these that is set is used: cluster.addrs, sentinel.addrs, url, addr.
type Redis struct {
	Addr     string   `mapstructure:"addr"`
	URL      string   `mapstructure:"url"` // redis://user:pass@host:port/db
	Username string   `mapstructure:"username"`
	Password string   `mapstructure:"password"`
	DB       int      `mapstructure:"db"`
	Sentinel Sentinel `mapstructure:"sentinel"`
	Cluster  Cluster  `mapstructure:"cluster"`
}

// Sentinel selects a Redis Sentinel set.
type Sentinel struct {
	MasterName string   `mapstructure:"master_name"`
	Addrs      []string `mapstructure:"addrs"`
	Password   string   `mapstructure:"password"`
}

// Cluster selects a Redis Cluster.
type Cluster struct {
	Addrs []string `mapstructure:"addrs"`
}

// HTTP is the ingress listener.
type HTTP struct {
	Addr            string        `mapstructure:"addr"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// Zuora is the Zuora tenant and the limits zsync keeps with it.
type Zuora struct {
	BaseURL       string        `mapstructure:"base_url"`
	Environment   string        `mapstructure:"environment"` // names a base URL (zuora.Environments); base_url wins
	EntityIDs     []string      `mapstructure:"entity_ids"`  // Zuora-Entity-Ids on every call (multi-entity tenants)
	ClientID      string        `mapstructure:"client_id"`
	ClientSecret  string        `mapstructure:"client_secret"`
	Version       string        `mapstructure:"version"`
	Timeout       time.Duration `mapstructure:"timeout"`
	Concurrency   int           `mapstructure:"concurrency"`     // tenant-wide, across all worker processes
	RatePerMinute int           `mapstructure:"rate_per_minute"` // tenant-wide; 0 = no rate limit
	RatePerHour   int           `mapstructure:"rate_per_hour"`   // tenant-wide; 0 = no hourly budget
	RatePerDay    int           `mapstructure:"rate_per_day"`    // tenant-wide; 0 = no daily budget
	// RateSlowBelow: at or below this fraction of RateLimit-Limit left,
	// zsync spaces its requests out until the reset; 0 = off.
	RateSlowBelow float64 `mapstructure:"rate_slow_below"`
	// ConcurrencyReserve: the fraction of the tenant's concurrency limit
	// zsync leaves free for other integrations; 0 = off.
	ConcurrencyReserve float64 `mapstructure:"concurrency_reserve"`
}

// Limio is the Limio tenant.
type Limio struct {
	BaseURL      string        `mapstructure:"base_url"`
	ClientID     string        `mapstructure:"client_id"`
	ClientSecret string        `mapstructure:"client_secret"`
	Timeout      time.Duration `mapstructure:"timeout"`
	// The write dialect (limio.Dialect): zsync's assumptions by default, the
	// alternative `zsync check` calls for when one fails.
	StatusField   string `mapstructure:"status_field"`   // status | data.status
	RelatedPath   string `mapstructure:"related_path"`   // subscription | subscriptions
	SchedulesFrom string `mapstructure:"schedules_from"` // related | list
	Lookup        string `mapstructure:"lookup"`         // summary | full
}

// Callout is how Zuora authenticates to zsync.
type Callout struct {
	Username      string   `mapstructure:"username"`
	Password      string   `mapstructure:"password"`
	HMACSecret    string   `mapstructure:"hmac_secret"`
	HMACHeader    string   `mapstructure:"hmac_header"`
	HMACAlgorithm string   `mapstructure:"hmac_algorithm"`
	HMACEncoding  string   `mapstructure:"hmac_encoding"`
	AllowIPs      []string `mapstructure:"allow_ips"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For is believed (for the
	// allow-list behind a load balancer); empty means use the peer address.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	AuthDisabled   bool     `mapstructure:"auth_disabled"`
	MaxBodyBytes   int64    `mapstructure:"max_body_bytes"`

	// HMACValueFormat is Zuora's HMAC Header Value ({{Request.HMAC.Signed}}
	// marks the signature); HMACData its Data ({{Request.Body}} by default).
	HMACValueFormat string `mapstructure:"hmac_value_format"`
	HMACData        string `mapstructure:"hmac_data"`
	// OAuth 2.0 client credentials at POST /oauth2/token: one client here,
	// more in OAuthClients; a previous secret is taken while it rotates.
	OAuthClientID             string        `mapstructure:"oauth_client_id"`
	OAuthClientSecret         string        `mapstructure:"oauth_client_secret"`
	OAuthClientSecretPrevious string        `mapstructure:"oauth_client_secret_previous"`
	OAuthClients              []OAuthClient `mapstructure:"oauth_clients"`
	// OAuthSigningKeys sign the tokens (the first) and verify them (all).
	OAuthSigningKeys []string      `mapstructure:"oauth_signing_keys"`
	OAuthTokenTTL    time.Duration `mapstructure:"oauth_token_ttl"`
	BearerTokens     []string      `mapstructure:"bearer_tokens"`
}

// OAuthClient is one more client of the token endpoint (config file only).
type OAuthClient struct {
	ClientID             string `mapstructure:"client_id"`
	ClientSecret         string `mapstructure:"client_secret"`
	ClientSecretPrevious string `mapstructure:"client_secret_previous"`
}

// Operator is how people and scripts authenticate to the operator API and
// asynqmon.
type Operator struct {
	Token    string `mapstructure:"token"`
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	// ResyncMaxIDs caps the ids of one POST /v1/resyncs (its body, streamed,
	// may be up to 128 bytes per id).
	ResyncMaxIDs int `mapstructure:"resync_max_ids"`
}

// LoopGuard says which changes Limio made itself (and must not be synced back).
type LoopGuard struct {
	IntegrationUserIDs []string `mapstructure:"integration_user_ids"`
	Sources            []string `mapstructure:"sources"`
	// IntegrationUserNames match creators rendered as user names or e-mails
	// (legacy <Subscription.CreatedBy>-style merge fields).
	IntegrationUserNames []string `mapstructure:"integration_user_names"`
}

// Catalog maps Zuora product rate plan ids to Limio offer paths (optional).
type Catalog struct {
	Offers map[string]string `mapstructure:"offers"`
}

// Worker is the sync worker pool.
type Worker struct {
	Concurrency     int           `mapstructure:"concurrency"`
	MaxRetry        int           `mapstructure:"max_retry"`
	Timeout         time.Duration `mapstructure:"timeout"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	LockTTL         time.Duration `mapstructure:"lock_ttl"`
	Retention       time.Duration `mapstructure:"retention"`
	BulkWeight      int           `mapstructure:"bulk_weight"`
	CoalesceWindow  time.Duration `mapstructure:"coalesce_window"`
	RetryBase       time.Duration `mapstructure:"retry_base"`
	RetryCap        time.Duration `mapstructure:"retry_cap"`
	CalloutsWeight  int           `mapstructure:"callouts_weight"`
	// WriteGrace: how long a subscription stays locked after a Limio write
	// whose outcome is unknown (a timeout: it may still land); <0 never.
	WriteGrace time.Duration `mapstructure:"write_grace"`
	// MetricsAddr, when set, makes `zsync work` serve /metrics there (behind
	// the operator credentials); the ingress serves its own on http.addr.
	MetricsAddr string `mapstructure:"metrics_addr"`
}

// Sweep is the periodic catch-up for callouts Zuora gave up on.
type Sweep struct {
	Schedule string        `mapstructure:"schedule"` // cron spec or "@every 15m"; "" disables
	Lookback time.Duration `mapstructure:"lookback"` // the first sweep looks this far back; 0: one interval
	Overlap  time.Duration `mapstructure:"overlap"`  // each sweep re-asks this far before the last one started (clock skew)
	// CatchUpMax is how far back the one catch-up sweep after a Redis data
	// loss asks Zuora (the sweep's own mark is lost with the data); 0: none.
	CatchUpMax time.Duration `mapstructure:"catchup_max"`
}

// Log is the zap logger.
type Log struct {
	Level  string `mapstructure:"level"`  // debug | info | warn | error
	Format string `mapstructure:"format"` // json | console
}

// Otel turns OpenTelemetry traces on: spans go by OTLP/HTTP to Endpoint
// (http://collector:4318). Empty: off, unless the standard
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
type Otel struct {
	Endpoint string `mapstructure:"endpoint"`
}

// defaults holds a value for every key: it documents them, and viper's
// AutomaticEnv only sees keys it knows of when unmarshalling (spf13/viper#188).
var defaults = map[string]any{
	"redis.addr":                     "127.0.0.1:6379",
	"redis.url":                      "",
	"redis.username":                 "",
	"redis.password":                 "",
	"redis.db":                       0,
	"redis.sentinel.master_name":     "",
	"redis.sentinel.addrs":           []string{},
	"redis.sentinel.password":        "",
	"redis.cluster.addrs":            []string{},
	"http.addr":                      ":8080",
	"http.shutdown_timeout":          10 * time.Second,
	"zuora.base_url":                 "",
	"zuora.environment":              "",
	"zuora.entity_ids":               []string{},
	"zuora.client_id":                "",
	"zuora.client_secret":            "",
	"zuora.version":                  "2025-08-12",
	"zuora.timeout":                  20 * time.Second,
	"zuora.concurrency":              20,
	"zuora.rate_per_minute":          0,
	"zuora.rate_per_hour":            0,
	"zuora.rate_per_day":             0,
	"zuora.rate_slow_below":          0.1,
	"zuora.concurrency_reserve":      0.25,
	"limio.base_url":                 "",
	"limio.client_id":                "",
	"limio.client_secret":            "",
	"limio.timeout":                  20 * time.Second,
	"limio.status_field":             "status",
	"limio.related_path":             "subscription",
	"limio.schedules_from":           "related",
	"limio.lookup":                   "summary",
	"callout.username":               "",
	"callout.password":               "",
	"callout.hmac_secret":            "",
	"callout.hmac_header":            "X-Zuora-Signature",
	"callout.hmac_algorithm":         "sha256",
	"callout.hmac_encoding":          "hex",
	"callout.allow_ips":              []string{},
	"callout.trusted_proxies":        []string{},
	"callout.auth_disabled":          false,
	"callout.max_body_bytes":         64 << 10,
	"operator.token":                 "",
	"operator.username":              "",
	"operator.password":              "",
	"operator.resync_max_ids":        1_000_000,
	"loopguard.integration_user_ids": []string{},
	"loopguard.sources":              []string{"shop", "salesforce"},
	"catalog.offers":                 map[string]string{},
	"worker.concurrency":             20,
	"worker.max_retry":               10,
	"worker.timeout":                 2 * time.Minute,
	"worker.shutdown_timeout":        30 * time.Second,
	"worker.lock_ttl":                30 * time.Second,
	"worker.retention":               24 * time.Hour,
	"worker.callouts_weight":         9,
	"worker.bulk_weight":             1,
	"worker.coalesce_window":         time.Second,
	"worker.retry_base":              time.Second,
	"worker.retry_cap":               5 * time.Minute,
	"worker.metrics_addr":            "",
	"worker.write_grace":             30 * time.Second,
	"sweep.schedule":                 "@every 15m",
	"sweep.lookback":                 time.Duration(0),
	"sweep.overlap":                  time.Minute,
	"sweep.catchup_max":              2 * time.Hour,
	"log.level":                      "info",
	"log.format":                     "json",

	// Callout authentication beyond Basic and the HMAC secret.
	"callout.hmac_value_format":            "{{Request.HMAC.Signed}}",
	"callout.hmac_data":                    "{{Request.Body}}",
	"callout.oauth_client_id":              "",
	"callout.oauth_client_secret":          "",
	"callout.oauth_client_secret_previous": "",
	"callout.oauth_clients":                []map[string]any{},
	"callout.oauth_signing_keys":           []string{},
	"callout.oauth_token_ttl":              time.Hour,
	"callout.bearer_tokens":                []string{},
	"loopguard.integration_user_names":     []string{},

	"otel.endpoint": "",
}

// Keys lists every configuration key (for docs and tests).
func Keys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	return keys
}

// Load reads the configuration. file may be empty (then ./zsync.yaml is used
// when present); flags may be nil. Flags are bound by their key name
// (e.g. a flag named "http.addr").
func Load(file string, flags *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("ZSYNC")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if file == "" {
		// Only ./zsync.yaml, named exactly: viper's own search would also
		// pick up a file called "zsync" (the binary, when run from its folder).
		if _, err := os.Stat("zsync.yaml"); err == nil {
			file = "zsync.yaml"
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	if flags != nil {
		var bindErr error
		flags.VisitAll(func(f *pflag.Flag) {
			if _, known := defaults[f.Name]; known {
				if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
					bindErr = err
				}
			}
		})
		if bindErr != nil {
			return nil, bindErr
		}
	}
	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	// Lists from the environment arrive as one comma-separated string.
	for _, l := range []*[]string{&c.Redis.Sentinel.Addrs, &c.Redis.Cluster.Addrs, &c.Callout.AllowIPs, &c.Callout.TrustedProxies,
		&c.LoopGuard.IntegrationUserIDs, &c.LoopGuard.Sources,
		&c.Callout.OAuthSigningKeys, &c.Callout.BearerTokens, &c.LoopGuard.IntegrationUserNames} {
		*l = splitList(*l)
	}
	if c.LoopGuard.Sources == nil {
		// Unset, the default list came through: empty means set to none,
		// which turns the source check off (downstream, nil means default).
		c.LoopGuard.Sources = []string{}
	}
	return &c, nil
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Need says which parts of the configuration a subcommand uses, so that
// `zsync work` doesn't demand callout credentials and `zsync serve` doesn't
// demand Zuora's.
type Need struct {
	Ingress  bool // http, callout, operator
	Upstream bool // zuora, limio
}

// Validate checks what the subcommand needs; every message names its key.
func (c *Config) Validate(need Need) error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, a...)...))
	}
	if len(c.Redis.Cluster.Addrs) == 0 && len(c.Redis.Sentinel.Addrs) == 0 && c.Redis.URL == "" && c.Redis.Addr == "" {
		bad("redis.addr", "is empty (set redis.addr, redis.url, redis.sentinel.* or redis.cluster.addrs)")
	}
	if len(c.Redis.Sentinel.Addrs) > 0 && c.Redis.Sentinel.MasterName == "" {
		bad("redis.sentinel.master_name", "is required with redis.sentinel.addrs")
	}
	if c.HTTP.ShutdownTimeout < 0 {
		bad("http.shutdown_timeout", "must not be negative")
	}
	if c.Worker.ShutdownTimeout < 0 {
		bad("worker.shutdown_timeout", "must not be negative")
	}
	if c.Redis.URL != "" {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			bad("redis.url", "must be redis://… or rediss://…")
		}
	}
	if c.Zuora.Environment != "" {
		if _, err := zuora.EnvironmentURL(c.Zuora.Environment); err != nil {
			bad("zuora.environment", "%s", err.Error())
		}
	}
	if err := zuora.CheckEntityIDs(c.Zuora.EntityIDs); err != nil {
		bad("zuora.entity_ids", "%s", err.Error())
	}
	if need.Upstream && (c.Zuora.BaseURL != "" || c.Zuora.Environment == "") {
		checkURL(bad, "zuora.base_url", c.Zuora.BaseURL)
	}
	if need.Upstream {
		checkURL(bad, "limio.base_url", c.Limio.BaseURL)
		for key, v := range map[string]string{"zuora.client_id": c.Zuora.ClientID, "zuora.client_secret": c.Zuora.ClientSecret,
			"limio.client_id": c.Limio.ClientID, "limio.client_secret": c.Limio.ClientSecret} {
			if v == "" {
				bad(key, "is required")
			}
		}
		for _, k := range []struct{ key, v, a, b string }{
			{"limio.status_field", c.Limio.StatusField, "status", "data.status"},
			{"limio.related_path", c.Limio.RelatedPath, "subscription", "subscriptions"},
			{"limio.schedules_from", c.Limio.SchedulesFrom, "related", "list"},
			{"limio.lookup", c.Limio.Lookup, "summary", "full"},
		} {
			if k.v != k.a && k.v != k.b {
				bad(k.key, "must be %s or %s, not %q (zsync check says which)", k.a, k.b, k.v)
			}
		}
		if c.Zuora.Concurrency < 1 {
			bad("zuora.concurrency", "must be at least 1 (zsync's share of the tenant's concurrency limit, 40 by default, shared by every integration)")
		}
		for key, v := range map[string]int{"zuora.rate_per_minute": c.Zuora.RatePerMinute,
			"zuora.rate_per_hour": c.Zuora.RatePerHour, "zuora.rate_per_day": c.Zuora.RatePerDay} {
			if v < 0 {
				bad(key, "must not be negative (0 turns it off)")
			}
		}
		if c.Zuora.RateSlowBelow < 0 || c.Zuora.RateSlowBelow >= 1 {
			bad("zuora.rate_slow_below", "must be a fraction from 0 (off) to below 1")
		}
		if c.Zuora.ConcurrencyReserve < 0 || c.Zuora.ConcurrencyReserve >= 1 {
			bad("zuora.concurrency_reserve", "must be a fraction from 0 (off) to below 1")
		}
		if c.Worker.Concurrency < 1 {
			bad("worker.concurrency", "must be at least 1")
		}
		if c.Worker.MaxRetry < 1 {
			bad("worker.max_retry", "must be at least 1 (0 would archive a task on its first throttle)")
		}
		if c.Worker.Timeout <= 0 {
			bad("worker.timeout", "must be positive")
		}
		if c.Worker.LockTTL < time.Second {
			bad("worker.lock_ttl", "must be at least 1s")
		}
	}
	if need.Ingress {
		if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
			bad("http.addr", "must be host:port (e.g. :8080): %v", err)
		}
		if !c.Callout.AuthDisabled {
			basic := c.Callout.Username != "" || c.Callout.Password != ""
			if basic && (c.Callout.Username == "" || c.Callout.Password == "") {
				bad("callout.username", "and callout.password must be set together")
			}
			if !basic && c.Callout.HMACSecret == "" && c.Callout.OAuthClientID == "" && len(c.Callout.OAuthClients) == 0 && len(c.Callout.BearerTokens) == 0 {
				bad("callout.username", "no callout authentication: set callout.username/password, callout.oauth_client_id/secret, callout.bearer_tokens and/or callout.hmac_secret (or callout.auth_disabled=true, never in production)")
			}
			if (c.Callout.OAuthClientID == "") != (c.Callout.OAuthClientSecret == "") {
				bad("callout.oauth_client_id", "and callout.oauth_client_secret must be set together")
			}
			if (c.Callout.OAuthClientID != "" || len(c.Callout.OAuthClients) > 0) && len(c.Callout.OAuthSigningKeys) == 0 {
				bad("callout.oauth_signing_keys", "is required with OAuth clients (at least 32 characters, the same in every ingress)")
			}
			if c.Operator.Token == "" && (c.Operator.Username == "" || c.Operator.Password == "") {
				bad("operator.token", "no operator credentials: set operator.token and/or operator.username/password")
			}
		}
		switch strings.ToLower(strings.ReplaceAll(c.Callout.HMACAlgorithm, "-", "")) {
		case "md5", "sha1", "sha224", "sha256", "sha384", "sha512":
		default:
			bad("callout.hmac_algorithm", "must be md5, sha1, sha224, sha256, sha384 or sha512, not %q", c.Callout.HMACAlgorithm)
		}
		switch strings.ToLower(c.Callout.HMACEncoding) {
		case "hex", "base64":
		default:
			bad("callout.hmac_encoding", "must be hex or base64, not %q", c.Callout.HMACEncoding)
		}
		if c.Callout.MaxBodyBytes < 1024 {
			bad("callout.max_body_bytes", "must be at least 1024")
		}
		if c.Operator.ResyncMaxIDs < 1 || c.Operator.ResyncMaxIDs > 10_000_000 {
			bad("operator.resync_max_ids", "must be between 1 and 10000000, not %d", c.Operator.ResyncMaxIDs)
		}
		c.Callout.validateAuth(bad)
	}
	if c.Worker.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.Worker.MetricsAddr); err != nil {
			bad("worker.metrics_addr", "must be host:port (e.g. :9090): %v", err)
		}
		if c.Operator.Token == "" && (c.Operator.Username == "" || c.Operator.Password == "") {
			bad("worker.metrics_addr", "/metrics is served behind the operator credentials: set operator.token and/or operator.username/password")
		}
	}
	if c.Sweep.Lookback < 0 || c.Sweep.Overlap < 0 {
		bad("sweep.lookback", "sweep.lookback and sweep.overlap must not be negative")
	}
	if c.Sweep.CatchUpMax < 0 {
		bad("sweep.catchup_max", "must not be negative (0 turns the catch-up off), got %s", c.Sweep.CatchUpMax)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "json", "console":
	default:
		bad("log.format", "must be json or console, not %q", c.Log.Format)
	}
	if e := c.Otel.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("otel.endpoint", "must be an http:// or https:// URL of an OTLP/HTTP collector, not %q", e)
		}
	}
	return errors.Join(errs...)
}

// hmacMergeFieldRE finds merge fields ({{…}} and legacy <Object.Field>) in
// the HMAC settings; the api package owns the full check, this one names the
// keys at start-up.
var hmacMergeFieldRE = regexp.MustCompile(`\{\{[^{}]*\}\}|<[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+>`)

// validateAuth checks the OAuth and HMAC settings a callout could not be
// verified without.
func (c Callout) validateAuth(bad func(string, string, ...any)) {
	if f := c.HMACValueFormat; f != "" {
		if strings.Count(f, "{{Request.HMAC.Signed}}") != 1 {
			bad("callout.hmac_value_format", "must contain {{Request.HMAC.Signed}} exactly once, where Zuora puts the signature")
		} else if m := hmacMergeFieldRE.FindString(strings.Replace(f, "{{Request.HMAC.Signed}}", "", 1)); m != "" {
			bad("callout.hmac_value_format", "%s can't be verified: only {{Request.HMAC.Signed}} may appear", m)
		}
	}
	for _, m := range hmacMergeFieldRE.FindAllString(c.HMACData, -1) {
		if m != "{{Request.Body}}" && !(strings.HasPrefix(m, "{{Request.Headers.") && len(m) > len("{{Request.Headers.}}")) {
			bad("callout.hmac_data", "%s can't be verified: use literal text, {{Request.Body}} and {{Request.Headers.<name>}}", m)
		}
	}
	secrets := map[string]string{"callout.oauth_client_secret": c.OAuthClientSecret, "callout.oauth_client_secret_previous": c.OAuthClientSecretPrevious}
	for i, cl := range c.OAuthClients {
		if cl.ClientID == "" || cl.ClientSecret == "" {
			bad("callout.oauth_clients", "client #%d needs client_id and client_secret", i+1)
		}
		secrets[fmt.Sprintf("callout.oauth_clients[%d]", i)] = cl.ClientSecret
		secrets[fmt.Sprintf("callout.oauth_clients[%d].client_secret_previous", i)] = cl.ClientSecretPrevious
	}
	for key, v := range secrets {
		if v != "" && len(v) < 16 {
			bad(key, "must be at least 16 characters")
		}
	}
	for _, k := range c.OAuthSigningKeys {
		if len(k) < 32 {
			bad("callout.oauth_signing_keys", "every key must be at least 32 characters")
			break
		}
	}
	for _, t := range c.BearerTokens {
		if len(t) < 16 {
			bad("callout.bearer_tokens", "every token must be at least 16 characters")
			break
		}
	}
}

func checkURL(bad func(string, string, ...any), key, v string) {
	if v == "" {
		bad(key, "is required")
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad(key, "must be an http(s) URL, not %q", v)
	}
}
