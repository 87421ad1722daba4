package config

import (
	"reflect"
	"slices"
	"time"

	"github.com/zsync/zsync/api"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
)

// Defaults is the configuration when nothing is set. A component's settings
// take the component's own defaults (each states them once, in its
// DefaultConfig); only the keys no component owns (Redis, the listener, the
// logger, tracing, the catch-up) have theirs here.
func Defaults() Config {
	a, w, sw := api.DefaultConfig(), worker.DefaultConfig(), worker.DefaultSweepConfig()
	z, zl := zuora.DefaultConfig(), zuora.DefaultLimitConfig()
	l, d := limio.DefaultConfig(), limio.Dialect{}.WithDefaults()
	return Config{
		Redis: Redis{Addr: "127.0.0.1:6379"},
		HTTP:  HTTP{Addr: ":8080", ShutdownTimeout: 10 * time.Second},
		Zuora: Zuora{Version: z.Version, Timeout: z.Timeout, Concurrency: zl.Concurrency, RatePerMinute: zl.PerMinute,
			RatePerHour: zl.PerHour, RatePerDay: zl.PerDay, RateSlowBelow: zl.SlowBelow, ConcurrencyReserve: zl.Reserve},
		Limio: Limio{Timeout: l.Timeout, StatusField: d.StatusField, RelatedPath: d.RelatedPath, SchedulesFrom: d.SchedulesFrom,
			Lookup: d.Lookup},
		Callout: Callout{HMACHeader: a.HMACHeader, HMACAlgorithm: a.HMACAlgorithm, HMACEncoding: a.HMACEncoding,
			MaxBodyBytes: a.MaxBodyBytes, HMACValueFormat: a.HMACValueFormat, HMACData: a.HMACData, OAuthTokenTTL: a.OAuthTokenTTL},
		Operator:  Operator{ResyncMaxIDs: a.MaxResyncIDs},
		LoopGuard: LoopGuard{Sources: slices.Clone(a.LoopSources)},
		Worker: Worker{Concurrency: w.Concurrency, MaxRetry: w.MaxRetry, Timeout: w.TaskTimeout, ShutdownTimeout: w.ShutdownTimeout,
			LockTTL: w.LockTTL, Retention: w.Retention, BulkWeight: w.Queues[worker.QueueBulk], CoalesceWindow: w.CoalesceWindow,
			RetryBase: w.RetryBase, RetryCap: w.RetryCap, CalloutsWeight: w.Queues[worker.QueueCallouts], WriteGrace: w.WriteGrace},
		Sweep: Sweep{Schedule: sw.Schedule, Lookback: sw.Lookback, Overlap: sw.Overlap, CatchUpMax: 2 * time.Hour},
		Log:   Log{Level: "info", Format: "json"},
	}
}

// defaults holds a value for every key: viper's AutomaticEnv only sees keys
// it knows of when unmarshalling (spf13/viper#188).
var defaults = flatten(reflect.ValueOf(Defaults()), "", map[string]any{})

// flatten adds each leaf of the struct v to out under its key (mapstructure
// names joined by dots). Nil lists and maps become empty ones: a key viper
// knows of needs a value.
func flatten(v reflect.Value, prefix string, out map[string]any) map[string]any {
	t := v.Type()
	for i := range t.NumField() {
		key := prefix + t.Field(i).Tag.Get("mapstructure")
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Struct:
			flatten(f, key+".", out)
		case f.Kind() == reflect.Slice && f.IsNil():
			out[key] = reflect.MakeSlice(f.Type(), 0, 0).Interface()
		case f.Kind() == reflect.Map && f.IsNil():
			out[key] = reflect.MakeMap(f.Type()).Interface()
		default:
			out[key] = f.Interface()
		}
	}
	return out
}

// Keys lists every configuration key (for docs and tests).
func Keys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
