package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// rtCounter is a go-redis hook counting round trips by what they carry: a
// single command is one round trip named by the command, a pipeline (or
// MULTI/EXEC) one round trip named by its commands joined with "+" (a run
// of one command as "…×n"). It counts
// only the client it is added to; asynq's server keeps its own connection.
type rtCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func newRTCounter() *rtCounter { return &rtCounter{n: map[string]int{}} }

func (c *rtCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *rtCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmdName(cmd))
		return next(ctx, cmd)
	}
}

func (c *rtCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		// A run of the same command (a shared pipeline of enqueues)
		// counts under one name whatever its length.
		names := make([]string, 0, len(cmds))
		for _, cmd := range cmds {
			n := cmdName(cmd)
			if k := len(names); k > 0 && strings.TrimSuffix(names[k-1], "×n") == n {
				names[k-1] = n + "×n"
				continue
			}
			names = append(names, n)
		}
		c.add(strings.Join(names, "+"))
		return next(ctx, cmds)
	}
}

// cmdName names a command; for scripts, by their first key's prefix, which
// says what the script is for (limiter, lock, outcome…).
func cmdName(cmd redis.Cmder) string {
	name := strings.ToUpper(cmd.Name())
	args := cmd.Args()
	if (name == "EVALSHA" || name == "EVAL") && len(args) > 3 {
		if k, ok := args[3].(string); ok {
			return name + "(" + keyPrefix(k) + ")"
		}
	}
	if len(args) > 1 {
		if k, ok := args[1].(string); ok && name != "PING" {
			return name + "(" + keyPrefix(k) + ")"
		}
	}
	return name
}

// keyPrefix keeps a key's leading segments up to the first that looks like an
// id, so keys of different subscriptions count together.
func keyPrefix(k string) string {
	parts := strings.Split(k, ":")
	for i, p := range parts {
		if strings.HasPrefix(p, "A-S") || strings.ContainsAny(p, "0123456789") && i > 0 {
			return strings.Join(parts[:i], ":") + ":…"
		}
	}
	return k
}

func (c *rtCounter) add(name string) {
	c.mu.Lock()
	c.n[name]++
	c.mu.Unlock()
}

func (c *rtCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// perUnit is the round trips between two snapshots divided by units: the
// total, and the list by purpose, largest first.
func perUnit(before, after map[string]int, units float64) (float64, string) {
	type kv struct {
		k string
		v float64
	}
	var list []kv
	total := 0.0
	for k, v := range after {
		if d := float64(v - before[k]); d > 0 {
			list = append(list, kv{k, d / units})
			total += d / units
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v })
	parts := make([]string, 0, len(list))
	for _, e := range list {
		if e.v >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f", e.k, e.v))
		}
	}
	return total, strings.Join(parts, ", ")
}

var _ redis.Hook = (*rtCounter)(nil)
