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

// Servers started later must not be given the same port: Port never hands
// out a port twice in one process, nor one Consecutive handed out.
func TestPortsAreHandedOutOnce(t *testing.T) {
	t.Parallel()
	base, err := Consecutive(4)
	if err != nil {
		t.Fatal(err)
	}
	if base < lo || base+4 > hi {
		t.Fatalf("ports %d–%d outside [%d, %d)", base, base+3, lo, hi)
	}
	seen := map[int]bool{base: true, base + 1: true, base + 2: true, base + 3: true}
	for range 500 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(p)
		if seen[n] {
			t.Fatalf("port %d handed out twice", n)
		}
		seen[n] = true
	}
}
