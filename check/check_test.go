package check_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/zsync/zsync/check"
	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/zuora/zuoratest"
)

func run(t *testing.T, ls *limiotest.Server, zs *zuoratest.Server, d limio.Dialect) check.Report {
	t.Helper()
	return check.Run(t.Context(), check.Config{
		Zuora:   zs.Config(),
		Limio:   limio.Config{BaseURL: ls.URL, ClientID: "sandbox", ClientSecret: "sandbox"},
		Dialect: d,
	})
}

func result(t *testing.T, rep check.Report, id string) check.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result %s in %+v", id, rep.Results)
	return check.Result{}
}

func sandboxes(t *testing.T) (*limiotest.Server, *zuoratest.Server) {
	t.Helper()
	ls := limiotest.NewServer(t)
	if err := ls.Seed(os.DirFS("../limio/testdata/seed")); err != nil {
		t.Fatal(err)
	}
	return ls, zuoratest.NewServer(t)
}

// The related path: a tenant answering 404 at the configured path type and
// 200 at the other fails, naming the setting; configured so, it passes.
func TestRelatedPathFallsBackToName(t *testing.T) {
	t.Parallel()
	ls, zs := sandboxes(t)
	ls.AddFault(sandbox.Fault{Method: http.MethodGet, Path: "/api/objects/limio/subscription/", Status: http.StatusNotFound})
	rep := run(t, ls, zs, limio.Dialect{})
	r := result(t, rep, "limio.related_path")
	if r.Status != check.Fail || r.Fix != "set limio.related_path=subscriptions" || rep.OK {
		t.Fatalf("singular path 404: %+v (ok %v)", r, rep.OK)
	}
	rep = run(t, ls, zs, limio.Dialect{RelatedPath: limio.RelatedPlural})
	if r := result(t, rep, "limio.related_path"); r.Status != check.Pass || !rep.OK {
		t.Fatalf("plural configured: %+v (ok %v)", r, rep.OK)
	}
}

// A tenant refusing the pinned version fails zuora.version with its answer
// as evidence; the text report carries it and the summary counts it.
func TestVersionRefused(t *testing.T) {
	t.Parallel()
	ls, zs := sandboxes(t)
	zs.AddFault(sandbox.Fault{Method: http.MethodPost, Path: "/v1/action/query", Status: http.StatusBadRequest,
		Body: `{"success":false,"reasons":[{"code":90000011,"message":"Invalid Zuora-Version header value: 2025-08-12"}]}`})
	rep := run(t, ls, zs, limio.Dialect{})
	r := result(t, rep, "zuora.version")
	if r.Status != check.Fail || r.HTTPStatus != 400 || !strings.Contains(r.Evidence, "Invalid Zuora-Version") {
		t.Fatalf("zuora.version = %+v", r)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "FAIL    zuora.version") || !strings.Contains(b.String(), "fix: set zuora.version") {
		t.Errorf("text report:\n%s", b.String())
	}
}
