package zuora_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/zsync/zsync/internal/zuoraspec"
	"github.com/zsync/zsync/zuora"
	"github.com/zsync/zsync/zuora/zuoratest"
)

// Zuora's OAuth client ids are 36-character UUIDs and secrets at most 42
// characters (the token operation's schema): the contract-checked sandboxes
// here issue tokens for such a pair, not for the dev sandbox's sandbox/sandbox.
const (
	specClientID     = "b64e42ba-7e1a-4bc6-9146-5e1b420306b5"
	specClientSecret = "dOFENLWU193EEoEsWjPZrcjLKVr5OrN1H"
)

// contractServer is a sandbox whose tokens go to spec-shaped credentials.
func contractServer(t *testing.T, opts ...zuoratest.Option) *zuoratest.Server {
	t.Helper()
	return zuoratest.NewServer(t, append([]zuoratest.Option{zuoratest.WithCredentials(specClientID, specClientSecret)}, opts...)...)
}

// contractHTTP is an HTTP client whose every exchange is held to Zuora's
// published spec (a violation fails t), sending through next when not nil.
func contractHTTP(t *testing.T, next http.RoundTripper) *http.Client {
	t.Helper()
	hc, tr := zuoraspec.Client(t)
	tr.Next = next
	transports.Store(t, tr)
	t.Cleanup(func() {
		if tr.Checked() == 0 && !t.Failed() {
			t.Log("contract: no Zuora exchange in this test")
		}
	})
	return hc
}

var transports sync.Map // *testing.T → its *zuoraspec.Transport

// offContract says the answers for path in t are beyond the spec on purpose.
func offContract(t *testing.T, path, reason string) {
	t.Helper()
	tr, ok := transports.Load(t)
	if !ok {
		t.Fatal("offContract before the client was made")
	}
	tr.(*zuoraspec.Transport).OffContract(path, reason)
}

// newClient is a client for srv whose exchanges are contract-checked; opts
// come after, so a test's own WithHTTPClient wins (give it contractHTTP).
func newClient(t *testing.T, cfg zuora.Config, opts ...zuora.Option) *zuora.Client {
	t.Helper()
	c, err := zuora.New(cfg, append([]zuora.Option{zuora.WithHTTPClient(contractHTTP(t, nil))}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}
