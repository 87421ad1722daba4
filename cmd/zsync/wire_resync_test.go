package main

import (
	"testing"

	"github.com/zsync/zsync/config"
)

// operator.resync_max_ids reaches the ingress's limit on POST /v1/resyncs.
func TestAPIConfigResyncMaxIDs(t *testing.T) {
	t.Setenv("ZSYNC_OPERATOR_RESYNC_MAX_IDS", "123456")
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := apiConfig(c).MaxResyncIDs; got != 123456 {
		t.Fatalf("api MaxResyncIDs = %d; want operator.resync_max_ids 123456", got)
	}
}
