// Package freeport picks loopback ports for test servers that are started
// after the port is chosen (a redis-server, a zsync subprocess).
//
// A port the kernel hands out for ":0" comes from the ephemeral range, where
// any outgoing connection may take it between the pick and the child's bind;
// with many tests running side by side that happens. Ports are drawn from
// below that range instead (Linux's default starts at 32768), where only
// another listener can collide, and that is checked by binding. A port is
// handed out once per process: two servers a test (or two parallel tests)
// start later can't be given the same free port.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

const lo, hi = 20000, 32000 // below the usual ephemeral range

var (
	mu     sync.Mutex
	handed = map[int]bool{} // ports this process has handed out
)

// Port returns a loopback TCP port that was free a moment ago and that this
// process has not handed out before.
func Port() (string, error) {
	base, err := Consecutive(1)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(base), nil
}

// Consecutive returns the first of n consecutive loopback TCP ports that
// were all free a moment ago, none handed out before by this process; all n
// are handed out now (zsync dev --port-base takes four).
func Consecutive(n int) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		base := lo + rand.N(hi-lo-n+1)
		if !free(base, n) {
			continue
		}
		for p := base; p < base+n; p++ {
			handed[p] = true
		}
		return base, nil
	}
	return 0, fmt.Errorf("no %d free ports in %d–%d", n, lo, hi)
}

// free reports whether ports base..base+n-1 are not yet handed out and can
// be bound now. mu is held.
func free(base, n int) bool {
	for p := base; p < base+n; p++ {
		if handed[p] {
			return false
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		_ = l.Close()
	}
	return true
}

// Addr returns "127.0.0.1:<port>" for a port from Port.
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", p), nil
}
