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
		opt, err := urlConn(c)
		if err != nil {
			return nil, nil, err
		}
		return opt, opt.MakeRedisClient().(redis.UniversalClient), nil
	default:
		opt := asynq.RedisClientOpt{Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB}
		return opt, opt.MakeRedisClient().(redis.UniversalClient), nil
	}
}

// urlConn reads redis.url (config.Validate admits redis:// and rediss://)
// with go-redis's parser, which keeps an ACL username (asynq's drops it);
// redis.username and redis.password fill in what the URL leaves out.
func urlConn(c config.Redis) (asynq.RedisConnOpt, error) {
	o, err := redis.ParseURL(c.URL)
	if err != nil {
		// Not wrapped: the parser's message quotes the URL, password and all.
		return nil, errors.New("redis.url: not a valid redis:// or rediss:// URL")
	}
	opt := asynq.RedisClientOpt{Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password,
		DB: o.DB, TLSConfig: o.TLSConfig}
	if opt.Username == "" {
		opt.Username = c.Username
	}
	if opt.Password == "" {
		opt.Password = c.Password
	}
	return opt, nil
}
