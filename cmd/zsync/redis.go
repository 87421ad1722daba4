package main

import (
	"errors"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/zsync/zsync/config"
)

// redisConn turns the redis section into asynq's connection option (cluster,
// sentinel, URL or plain address) and a go-redis client for zsync's own keys
// (epochs, locks, outcomes, limits) on the same server.
func redisConn(c config.Redis) (asynq.RedisConnOpt, redis.UniversalClient, error) {
	switch {
	case len(c.Cluster.Addrs) > 0:
		opt := asynq.RedisClusterClientOpt{Addrs: c.Cluster.Addrs, Username: c.Username, Password: c.Password}
		return opt, opt.MakeRedisClient().(redis.UniversalClient), nil
	case len(c.Sentinel.Addrs) > 0:
		opt := asynq.RedisFailoverClientOpt{MasterName: c.Sentinel.MasterName, SentinelAddrs: c.Sentinel.Addrs,
			SentinelPassword: c.Sentinel.Password, Username: c.Username, Password: c.Password, DB: c.DB}
		return opt, opt.MakeRedisClient().(redis.UniversalClient), nil
	case c.URL != "":
		opt, err := asynq.ParseRedisURI(c.URL)
		if err != nil {
			// Not wrapped: the parser's message quotes the URL, password and all.
			return nil, nil, errors.New("redis.url: not a valid redis:// or rediss:// URL")
		}
		return opt, opt.MakeRedisClient().(redis.UniversalClient), nil
	default:
		opt := asynq.RedisClientOpt{Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB}
		return opt, opt.MakeRedisClient().(redis.UniversalClient), nil
	}
}
