package config

import (
	"strings"
	"testing"
)

// operator.resync_max_ids: 1,000,000 by default, from the environment like
// any key, refused outside 1…10,000,000 with its key named.
func TestResyncMaxIDs(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Operator.ResyncMaxIDs != 1_000_000 {
		t.Fatalf("default operator.resync_max_ids = %d; want 1000000", c.Operator.ResyncMaxIDs)
	}
	t.Setenv("ZSYNC_OPERATOR_RESYNC_MAX_IDS", "250000")
	if c, err = Load("", nil); err != nil || c.Operator.ResyncMaxIDs != 250_000 {
		t.Fatalf("from the environment: %d, %v; want 250000", c.Operator.ResyncMaxIDs, err)
	}
	c.Callout.HMACSecret, c.Operator.Token = "s", "t"
	if err := c.Validate(Need{Ingress: true}); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, n := range []int{0, -1, 10_000_001} {
		c.Operator.ResyncMaxIDs = n
		if err := c.Validate(Need{Ingress: true}); err == nil || !strings.Contains(err.Error(), "operator.resync_max_ids:") {
			t.Errorf("operator.resync_max_ids = %d: Validate = %v; want it named", n, err)
		}
	}
}

// operator.resync_max_ids reaches the ingress's limit on POST /v1/resyncs.
func TestAPIConfigResyncMaxIDs(t *testing.T) {
	t.Setenv("ZSYNC_OPERATOR_RESYNC_MAX_IDS", "123456")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.APIConfig().MaxResyncIDs; got != 123456 {
		t.Fatalf("api MaxResyncIDs = %d; want operator.resync_max_ids 123456", got)
	}
}
