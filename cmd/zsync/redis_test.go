package main

import (
	"strings"
	"testing"

	"github.com/zsync/zsync/config"
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
