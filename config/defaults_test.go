package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
)

// An empty configuration hands every component exactly its own defaults:
// a default is stated once, in the component, and config can't drift from
// it (worker.shutdown_timeout once said 30s here and 20s in the worker).
func TestEmptyConfigIsTheComponentsDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	limits := c.ZuoraLimits()
	if limits.Lease != c.Zuora.Timeout+10*time.Second {
		t.Errorf("zuora lease = %s; want zuora.timeout + 10s", limits.Lease)
	}
	limits.Lease = 0 // derived from zuora.timeout, not a default of its own
	zc := c.ZuoraConfig()
	if len(zc.EntityIDs) == 0 {
		zc.EntityIDs = nil // viper's empty list
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"worker", c.WorkerConfig().WithDefaults(), worker.DefaultConfig()},
		{"sweep", c.SweepConfig(), sweepDefaults()},
		{"api", c.APIConfig(), api.DefaultConfig()},
		{"zuora", zc, zuora.DefaultConfig()},
		{"zuora limits", limits.WithDefaults(), zuora.DefaultLimitConfig()},
		{"limio", c.LimioConfig(), limio.DefaultConfig()},
		{"limio dialect", c.LimioDialect(), limio.Dialect{}.WithDefaults()},
		{"syncer loop sources", c.SyncerConfig().LoopSources, syncer.DefaultLoopSources},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s from an empty config:\n got %+v\nwant %+v", tc.name, tc.got, tc.want)
		}
	}
}

// sweepDefaults is the part of the sweep's defaults config sets.
func sweepDefaults() worker.SweepConfig {
	d := worker.DefaultSweepConfig()
	return worker.SweepConfig{Schedule: d.Schedule, Lookback: d.Lookback, Overlap: d.Overlap, Prefix: d.Prefix}
}

// Every key has a default, so viper's AutomaticEnv knows of it.
func TestEveryKeyHasADefault(t *testing.T) {
	keys := Keys()
	for _, k := range []string{"worker.shutdown_timeout", "limio.timeout", "callout.oauth_clients", "redis.cluster.addrs", "otel.endpoint"} {
		if !slices.Contains(keys, k) {
			t.Errorf("Keys() lacks %s", k)
		}
	}
}

// A component's message names the component's fields; config names keys,
// in the message too.
func TestComponentMessagesNameKeys(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Worker.Timeout, c.Sweep.Overlap = -time.Second, -time.Second
	c.Callout.OAuthClients = []OAuthClient{{ClientID: "wf", ClientSecret: "0123456789abcdef", ClientSecretPrevious: "short"}}
	err = c.Validate(Need{Ingress: true, Upstream: true})
	if err == nil {
		t.Fatal("Validate passed")
	}
	msg := err.Error()
	c.Callout.OAuthClients = nil
	msg += "\n" + c.Validate(Need{Ingress: true}).Error()
	for _, want := range []string{"worker.timeout: must be positive", "sweep.overlap: must not be negative",
		"callout.oauth_clients[0].client_secret_previous: ", "callout.username: no callout authentication: set callout.username/password",
		"operator.token: no operator credentials: set operator.token", "limio.base_url: is required", "zuora.client_secret: is required"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	for _, field := range []string{"CalloutUsername", "OperatorToken", "BearerTokens", "TaskTimeout", "task_timeout", "ClientSecret", "Overlap:"} {
		if strings.Contains(msg, field) {
			t.Errorf("message names the field %s, not its key:\n%s", field, msg)
		}
	}
}
