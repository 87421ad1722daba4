package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/redistest"
)

// A malformed redis.url is refused without echoing the URL: it may hold a
// password.
func TestRedisURLErrorHidesPassword(t *testing.T) {
	t.Parallel()
	_, _, err := redisConn(config.Redis{URL: "redis://user:hunter2-secret@host:notaport/0"})
	if err == nil {
		t.Fatal("malformed redis.url accepted")
	}
	if strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

// redis.url keeps an ACL username (asynq's own parser drops it), TLS for
// rediss://, and takes redis.username/password for what the URL leaves out.
func TestRedisURLKeepsCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg              config.Redis
		user, pass, addr string
		db               int
		tls              bool
	}{
		{config.Redis{URL: "redis://zs:pw@cache:6380/2"}, "zs", "pw", "cache:6380", 2, false},
		{config.Redis{URL: "rediss://zs:pw@cache:6380/0"}, "zs", "pw", "cache:6380", 0, true},
		{config.Redis{URL: "redis://cache:6379/1", Username: "zs", Password: "pw"}, "zs", "pw", "cache:6379", 1, false},
	} {
		opt, rdb, err := redisConn(tc.cfg)
		if err != nil {
			t.Fatalf("%+v: %v", tc.cfg, err)
		}
		_ = rdb.Close()
		o, ok := opt.(asynq.RedisClientOpt)
		if !ok || o.Username != tc.user || o.Password != tc.pass || o.Addr != tc.addr || o.DB != tc.db || (o.TLSConfig != nil) != tc.tls {
			t.Errorf("%s: %+v", tc.cfg.URL, opt)
		}
	}
}

// Against a real Redis with an ACL user, as managed Redis services set up.
func TestRedisURLWithACLUser(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	admin := rs.Client(t)
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "zs-"+t.Name(), "on", ">pw-S3CR3T", "~*", "&*", "+@all").Err(); err != nil {
		t.Skipf("no ACL support: %v", err)
	}
	_, rdb, err := redisConn(config.Redis{URL: fmt.Sprintf("redis://zs-%s:pw-S3CR3T@%s/%d", t.Name(), rs.Addr, rs.DB)})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("ping as the ACL user: %v", err)
	}
}
