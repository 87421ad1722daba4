// Package freeport picks loopback ports for test servers that are started
// after the port is chosen (a redis-server, a zsync subprocess).
//
// A port the kernel hands out for ":0" comes from the ephemeral range, where
// any outgoing connection may take it between the pick and the child's bind;
// with many tests running side by side that happens. Ports are drawn from
// below that range instead (Linux's default starts at 32768), where only
// another listener can collide, and that is checked by binding.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

const lo, hi = 20000, 32000 // below the usual ephemeral range

// Port returns a loopback TCP port that was free a moment ago.
func Port() (string, error) {
	for range 100 {
		p := strconv.Itoa(lo + rand.N(hi-lo))
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", p))
		if err != nil {
			continue
		}
		_ = l.Close()
		return p, nil
	}
	return "", fmt.Errorf("no free port in %d–%d", lo, hi)
}

// Addr returns "127.0.0.1:<port>" for a port from Port.
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", p), nil
}
