// Package config is the only importer of viper. It reads defaults (the
// components' own: defaults.go), an optional zsync.yaml, ZSYNC_* environment
// variables and command-line flags (in rising precedence) into one typed
// Config, and validates it, by the components' Validate, with messages that
// name the offending key. Nothing reads viper after startup: cmd/zsync hands
// each component its Config (components.go).
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/zsync/zsync/internal/field"
	"github.com/zsync/zsync/worker"
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
// Each component's Validate checks its own fields, named here by their keys;
// what is left is what only the configuration knows: the keys only cmd/zsync
// reads, zeros a component would silently take for its default, and rules
// across keys.
func (c *Config) Validate(need Need) error {
	var errs field.Errors
	bad := errs.Add
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.Redis.Cluster.Addrs) == 0 && len(c.Redis.Sentinel.Addrs) == 0 && c.Redis.URL == "" && c.Redis.Addr == "" {
		bad("redis.addr", "is empty (set redis.addr, redis.url, redis.sentinel.* or redis.cluster.addrs)")
	}
	if len(c.Redis.Sentinel.Addrs) > 0 && c.Redis.Sentinel.MasterName == "" {
		bad("redis.sentinel.master_name", "is required with redis.sentinel.addrs")
	}
	if c.Redis.URL != "" {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			bad("redis.url", "must be redis://… or rediss://…")
		}
	}
	if c.HTTP.ShutdownTimeout < 0 {
		bad("http.shutdown_timeout", "must not be negative")
	}
	// Every process stamps the worker section on the tasks it enqueues.
	add(field.Rename(c.WorkerConfig().WithDefaults().Validate(), workerKeys))
	if need.Upstream {
		add(field.Rename(c.ZuoraConfig().Validate(), zuoraKeys))
		add(field.Rename(c.ZuoraLimits().Validate(), zuoraLimitKeys))
		add(field.Rename(c.LimioConfig().Validate(), limioKeys))
		add(c.LimioDialect().Validate())
		// Set to 0, these would silently become the component's default.
		if c.Zuora.Concurrency == 0 {
			bad("zuora.concurrency", "must be at least 1 (zsync's share of the tenant's concurrency limit, 40 by default, shared by every integration)")
		}
		if c.Worker.Concurrency == 0 {
			bad("worker.concurrency", "must be at least 1")
		}
		if c.Worker.MaxRetry == 0 {
			bad("worker.max_retry", "must be at least 1 (0 would archive a task on its first throttle)")
		}
		if c.Worker.Timeout == 0 {
			bad("worker.timeout", "must be positive")
		}
		// The worker takes shorter locks (tests do); a deployment doesn't.
		if c.Worker.LockTTL >= 0 && c.Worker.LockTTL < time.Second {
			bad("worker.lock_ttl", "must be at least 1s")
		}
	} else {
		if c.Zuora.Environment != "" {
			if _, err := zuora.EnvironmentURL(c.Zuora.Environment); err != nil {
				bad("zuora.environment", "%v", err)
			}
		}
		if err := zuora.CheckEntityIDs(c.Zuora.EntityIDs); err != nil {
			bad("zuora.entity_ids", "%v", err)
		}
	}
	if need.Ingress {
		if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
			bad("http.addr", "must be host:port (e.g. :8080): %v", err)
		}
		// A secret without callout.oauth_client_id makes no client at all.
		if !c.Callout.AuthDisabled && (c.Callout.OAuthClientID == "") != (c.Callout.OAuthClientSecret == "") {
			bad("callout.oauth_client_id", "and callout.oauth_client_secret must be set together")
		}
		add(field.Rename(c.APIConfig().Validate(), c.Callout.apiKeys))
		// Set to 0, this would silently become the ingress's default.
		if c.Operator.ResyncMaxIDs == 0 {
			bad("operator.resync_max_ids", "must be between 1 and 10000000, not 0")
		}
	}
	if c.Worker.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.Worker.MetricsAddr); err != nil {
			bad("worker.metrics_addr", "must be host:port (e.g. :9090): %v", err)
		}
		if c.Operator.Token == "" && (c.Operator.Username == "" || c.Operator.Password == "") {
			bad("worker.metrics_addr", "/metrics is served behind the operator credentials: set operator.token and/or operator.username/password")
		}
	}
	sw := c.SweepConfig()
	if sw.Schedule == "" {
		sw.Schedule = worker.DefaultSweepConfig().Schedule // off: the rest is still checked
	}
	add(field.Rename(sw.Validate(), sweepKeys))
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
	return errs.Err()
}
