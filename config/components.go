package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/internal/field"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
)

// Each component owns its Config: defaults (Defaults reads them back) and
// Validate. Here every key is mapped onto a field, and each field a Validate
// may refuse is mapped back to its key, so that the messages name what was
// set. A new key goes into a section struct, the component mapping below,
// Defaults (if the component has a default for it) and the key table.

// WorkerConfig is the worker's section (worker.*); zero fields take the
// worker's defaults where they have one (WithDefaults).
func (c *Config) WorkerConfig() worker.Config {
	return worker.Config{
		Concurrency:     c.Worker.Concurrency,
		Queues:          map[string]int{worker.QueueCallouts: c.Worker.CalloutsWeight, worker.QueueBulk: c.Worker.BulkWeight},
		MaxRetry:        c.Worker.MaxRetry,
		TaskTimeout:     c.Worker.Timeout,
		Retention:       c.Worker.Retention,
		ShutdownTimeout: c.Worker.ShutdownTimeout,
		LockTTL:         c.Worker.LockTTL,
		CoalesceWindow:  c.Worker.CoalesceWindow,
		RetryBase:       c.Worker.RetryBase,
		RetryCap:        c.Worker.RetryCap,
		WriteGrace:      c.Worker.WriteGrace,
	}
}

var workerKeys = field.Keys(map[string]string{
	"worker.concurrency":      "worker.concurrency",
	"worker.queues":           "worker.callouts_weight, worker.bulk_weight",
	"worker.max_retry":        "worker.max_retry",
	"worker.task_timeout":     "worker.timeout",
	"worker.retention":        "worker.retention",
	"worker.shutdown_timeout": "worker.shutdown_timeout",
	"worker.lock_ttl":         "worker.lock_ttl",
	"worker.retry_base":       "worker.retry_base",
	"worker.retry_cap":        "worker.retry_cap",
})

// SweepConfig is the sweep's section (sweep.*) with the worker's prefix.
// An empty Schedule turns the sweep off.
func (c *Config) SweepConfig() worker.SweepConfig {
	return worker.SweepConfig{Schedule: c.Sweep.Schedule, Lookback: c.Sweep.Lookback, Overlap: c.Sweep.Overlap,
		Prefix: c.WorkerConfig().WithDefaults().Prefix}
}

var sweepKeys = field.Keys(map[string]string{
	"Schedule": "sweep.schedule",
	"Lookback": "sweep.lookback",
	"Overlap":  "sweep.overlap",
})

// APIConfig is the ingress's part of callout.*, operator.* and loopguard.*.
func (c *Config) APIConfig() api.Config {
	return api.Config{
		CalloutUsername:    c.Callout.Username,
		CalloutPassword:    c.Callout.Password,
		HMACSecret:         c.Callout.HMACSecret,
		HMACHeader:         c.Callout.HMACHeader,
		HMACAlgorithm:      c.Callout.HMACAlgorithm,
		HMACEncoding:       c.Callout.HMACEncoding,
		AllowIPs:           c.Callout.AllowIPs,
		TrustedProxies:     c.Callout.TrustedProxies,
		AuthDisabled:       c.Callout.AuthDisabled,
		OperatorToken:      c.Operator.Token,
		OperatorUsername:   c.Operator.Username,
		OperatorPassword:   c.Operator.Password,
		MaxBodyBytes:       c.Callout.MaxBodyBytes,
		MaxResyncIDs:       c.Operator.ResyncMaxIDs,
		LoopSources:        c.LoopGuard.Sources,
		IntegrationUserIDs: c.LoopGuard.IntegrationUserIDs,

		HMACValueFormat:      c.Callout.HMACValueFormat,
		HMACData:             c.Callout.HMACData,
		OAuthClients:         c.Callout.oauthClients(),
		OAuthSigningKeys:     c.Callout.OAuthSigningKeys,
		OAuthTokenTTL:        c.Callout.OAuthTokenTTL,
		BearerTokens:         c.Callout.BearerTokens,
		IntegrationUserNames: c.LoopGuard.IntegrationUserNames,
	}
}

// oauthClients gathers callout.oauth_client_id (first, when set) and
// callout.oauth_clients.
func (c Callout) oauthClients() []api.OAuthClient {
	var out []api.OAuthClient
	if c.OAuthClientID != "" {
		out = append(out, api.OAuthClient{ID: c.OAuthClientID, Secrets: []string{c.OAuthClientSecret, c.OAuthClientSecretPrevious}})
	}
	for _, cl := range c.OAuthClients {
		out = append(out, api.OAuthClient{ID: cl.ClientID, Secrets: []string{cl.ClientSecret, cl.ClientSecretPrevious}})
	}
	return out
}

var apiFieldKeys = map[string]string{
	"CalloutUsername":  "callout.username",
	"HMACHeader":       "callout.hmac_header",
	"HMACAlgorithm":    "callout.hmac_algorithm",
	"HMACEncoding":     "callout.hmac_encoding",
	"HMACValueFormat":  "callout.hmac_value_format",
	"HMACData":         "callout.hmac_data",
	"OAuthSigningKeys": "callout.oauth_signing_keys",
	"OAuthTokenTTL":    "callout.oauth_token_ttl",
	"BearerTokens":     "callout.bearer_tokens",
	"AllowIPs":         "callout.allow_ips",
	"TrustedProxies":   "callout.trusted_proxies",
	"MaxBodyBytes":     "callout.max_body_bytes",
	"MaxResyncIDs":     "operator.resync_max_ids",
	"OperatorToken":    "operator.token",
	"OperatorUsername": "operator.username",
}

// apiFieldWords are the api.Config fields messages mention, as keys.
var apiFieldWords = strings.NewReplacer(
	"CalloutUsername/CalloutPassword", "callout.username/password",
	"CalloutUsername and CalloutPassword", "callout.username and callout.password",
	"OperatorUsername/OperatorPassword", "operator.username/password",
	"OperatorUsername and OperatorPassword", "operator.username and operator.password",
	"OAuthClients", "callout.oauth_client_id/secret or callout.oauth_clients",
	"BearerTokens", "callout.bearer_tokens",
	"HMACSecret", "callout.hmac_secret",
	"AuthDisabled", "callout.auth_disabled=true",
	"OperatorToken", "operator.token",
)

// apiKeys names an api.Config field error by its key.
func (c Callout) apiKeys(e field.Error) field.Error {
	if k := c.apiKey(e); k != "" {
		e.Field = k
	}
	e.Msg = apiFieldWords.Replace(e.Msg)
	return e
}

// apiKey is the key of an api.Config field; an OAuth client is
// callout.oauth_client_id's (when set, the first) or one of
// callout.oauth_clients, and its secrets the current and the previous.
func (c Callout) apiKey(e field.Error) string {
	if e.Field != "OAuthClients" || len(e.Index) == 0 {
		return apiFieldKeys[e.Field]
	}
	i := e.Index[0]
	if c.OAuthClientID != "" {
		if i == 0 {
			if len(e.Index) < 2 {
				return "callout.oauth_client_id"
			}
			return [...]string{"callout.oauth_client_secret", "callout.oauth_client_secret_previous"}[e.Index[1]]
		}
		i--
	}
	if len(e.Index) < 2 {
		return "callout.oauth_clients"
	}
	return fmt.Sprintf("callout.oauth_clients[%d]", i) + [...]string{".client_secret", ".client_secret_previous"}[e.Index[1]]
}

// SyncerConfig is the syncer's part of loopguard.* and catalog.*.
func (c *Config) SyncerConfig() syncer.Config {
	return syncer.Config{
		IntegrationUserIDs: c.LoopGuard.IntegrationUserIDs,
		LoopSources:        c.LoopGuard.Sources,
		Offers:             c.Catalog.Offers,

		IntegrationUserNames: c.LoopGuard.IntegrationUserNames,
	}
}

// ZuoraConfig is the Zuora client's part of zuora.*.
func (c *Config) ZuoraConfig() zuora.Config {
	return zuora.Config{
		BaseURL: c.Zuora.BaseURL, Environment: c.Zuora.Environment, EntityIDs: c.Zuora.EntityIDs,
		ClientID: c.Zuora.ClientID, ClientSecret: c.Zuora.ClientSecret,
		Version: c.Zuora.Version, Timeout: c.Zuora.Timeout,
	}
}

var zuoraKeys = field.Keys(map[string]string{
	"BaseURL":      "zuora.base_url",
	"Environment":  "zuora.environment",
	"EntityIDs":    "zuora.entity_ids",
	"ClientID":     "zuora.client_id",
	"ClientSecret": "zuora.client_secret",
})

// ZuoraLimits is the tenant-wide limiter's part of zuora.*; the caller adds
// its observer and logger.
func (c *Config) ZuoraLimits() zuora.LimitConfig {
	return zuora.LimitConfig{
		Concurrency: c.Zuora.Concurrency,
		PerMinute:   c.Zuora.RatePerMinute,
		PerHour:     c.Zuora.RatePerHour,
		PerDay:      c.Zuora.RatePerDay,
		SlowBelow:   c.Zuora.RateSlowBelow,
		Reserve:     c.Zuora.ConcurrencyReserve,
		Lease:       c.ZuoraConfig().WithDefaults().Timeout + 10*time.Second, // a slot outlives any request it covers
	}
}

var zuoraLimitKeys = field.Keys(map[string]string{
	"Concurrency": "zuora.concurrency",
	"PerMinute":   "zuora.rate_per_minute",
	"PerHour":     "zuora.rate_per_hour",
	"PerDay":      "zuora.rate_per_day",
	"SlowBelow":   "zuora.rate_slow_below",
	"Reserve":     "zuora.concurrency_reserve",
})

// LimioConfig is the Limio client's part of limio.*.
func (c *Config) LimioConfig() limio.Config {
	return limio.Config{BaseURL: c.Limio.BaseURL, ClientID: c.Limio.ClientID, ClientSecret: c.Limio.ClientSecret, Timeout: c.Limio.Timeout}
}

var limioKeys = field.Keys(map[string]string{
	"BaseURL":      "limio.base_url",
	"ClientID":     "limio.client_id",
	"ClientSecret": "limio.client_secret",
})

// LimioDialect is the limio.* dialect keys (see zsync check); its Validate
// names them already.
func (c *Config) LimioDialect() limio.Dialect {
	return limio.Dialect{StatusField: c.Limio.StatusField, RelatedPath: c.Limio.RelatedPath,
		SchedulesFrom: c.Limio.SchedulesFrom, Lookup: c.Limio.Lookup}
}
