package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	i := Get()
	if i.Version == "" || i.Revision == "" || i.GoVersion != runtime.Version() {
		t.Fatalf("Get() = %+v; want every part set", i)
	}
	old := version
	t.Cleanup(func() { version = old })
	version = "v1.2.3"
	if got := Get(); got.Version != "v1.2.3" || !strings.HasPrefix(got.String(), "v1.2.3 (revision ") {
		t.Errorf("with a stamped version: %+v %q", got, got.String())
	}
}
