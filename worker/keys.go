package worker

import "github.com/redis/go-redis/v9"

// keyspace names every Redis key the worker owns, in one place. Keys are
// prefixed and never contain braces, so they spread over a Redis Cluster.
type keyspace struct{ prefix string }

// The epoch hash of a subscription key (epoch.go).
func (k keyspace) epoch(key string) string { return k.prefix + "epoch:" + key }

// The per-subscription lock (lock.go).
func (k keyspace) lock(key string) string { return k.prefix + "lock:" + key }

// The outcome store (store.go).
func (k keyspace) latest(id string) string  { return k.prefix + "outcome:latest:" + id }
func (k keyspace) history(id string) string { return k.prefix + "outcome:history:" + id }
func (k keyspace) alias(id string) string   { return k.prefix + "outcome:alias:" + id }
func (k keyspace) stream() string           { return k.prefix + "outcome:stream" }

// A resync job: its progress hash and two capped lists (jobs.go).
func (k keyspace) job(id string) string         { return k.prefix + "bulk:job:" + id }
func (k keyspace) jobFailures(id string) string { return k.prefix + "bulk:job:" + id + ":failures" }
func (k keyspace) jobInvalid(id string) string  { return k.prefix + "bulk:job:" + id + ":invalid" }

// The sweep's state and its lock (sweep.go).
func (k keyspace) sweep() string     { return k.prefix + "sweep" }
func (k keyspace) sweepLock() string { return k.prefix + "sweep:lock" }

// asynqTaskKey is the Redis hash asynq keeps a task in (asynq v0.26's
// internal/base.TaskKey), whose "result" field asynqmon shows: the handler
// writes the task's result in its own pipeline rather than through
// ResultWriter's separate round trip. TestTaskResultIsCompact (asynq's
// Inspector reading the result back) fails if asynq moves it.
func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// writeResultScript sets a task's result only while its hash exists. A
// plain HSET (what asynq's ResultWriter sends) into a task whose hash was
// lost with Redis' data would leave a hash holding only a result under that
// id, which asynq's enqueue then takes for an existing task. Sent with EVAL
// in the record's pipeline (it is short): no NOSCRIPT to recover from.
var writeResultScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], 'result', ARGV[1]) end
return 0`)
