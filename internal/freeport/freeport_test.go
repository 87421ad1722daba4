package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortIsFreeAndOutsideTheEphemeralRange(t *testing.T) {
	t.Parallel()
	for range 20 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(p)
		if n < lo || n >= hi {
			t.Fatalf("port %d outside [%d, %d)", n, lo, hi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", p))
		if err != nil {
			t.Fatalf("port %s is not free: %v", p, err)
		}
		_ = l.Close()
	}
}
