// Package check verifies, against the configured Zuora and Limio tenants,
// each assumption zsync makes about their APIs (README "Assumptions about
// the real APIs"), through the same clients a sync uses: one Result per
// assumption, pass, fail or unknown, with the request made, the status and
// the part of the answer that decided. It is read-only unless Config.Write
// names a Limio test subscription; the write checks then say which object
// they touched.
package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

// Status is a check's verdict.
type Status string

// Verdicts. Unknown means the tenant gave no answer that decides (nothing to
// look at, or a failure that says nothing about the assumption): it fails
// nothing, and the evidence says what would decide it.
const (
	Pass    Status = "pass"
	Fail    Status = "fail"
	Unknown Status = "unknown"
)

// Result is one assumption checked.
type Result struct {
	ID         string `json:"id"`         // e.g. limio.put_status: the API, then the assumption
	Assumption string `json:"assumption"` // what zsync assumes, in words
	Status     Status `json:"status"`
	Request    string `json:"request,omitempty"`     // the request that decided: METHOD path [body]
	HTTPStatus int    `json:"http_status,omitempty"` // its answer's status
	Evidence   string `json:"evidence"`              // the deciding part of the answer
	Touched    string `json:"touched,omitempty"`     // write checks: the object changed, and how
	Fix        string `json:"fix,omitempty"`         // on fail: the setting or action it calls for
}

// Report is every result and the count of each verdict.
type Report struct {
	Results []Result  `json:"results"`
	Pass    int       `json:"pass"`
	Fail    int       `json:"fail"`
	Unknown int       `json:"unknown"`
	OK      bool      `json:"ok"` // no failure
	Started time.Time `json:"started"`
}

// Config is what Run checks.
type Config struct {
	Zuora   zuora.Config
	Limio   limio.Config
	Dialect limio.Dialect // the configured dialect (limio.* keys)
	// Index is the production lookup index (Redis), so the lookup check
	// follows a sync's path; nil looks up by scan alone.
	Index limio.Index
	// Subscription is a Zuora subscription number to read with its account,
	// billing preview and order ("" skips those checks).
	Subscription string
	// Write is the id of a Limio subscription the operator names as a test
	// record: the write checks run against it ("" runs none).
	Write string
	// Transport is the base HTTP transport (nil: http.DefaultTransport).
	Transport http.RoundTripper
	Now       func() time.Time
}

// Run checks everything cfg asks for. It never fails itself: a check that
// can't run is a result.
func Run(ctx context.Context, cfg Config) Report {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &runner{cfg: cfg, rec: &recorder{base: cfg.Transport}}
	r.rep.Started = cfg.Now().UTC()
	hc := &http.Client{Transport: r.rec}
	r.hc = hc
	if zc, err := zuora.New(cfg.Zuora, zuora.WithHTTPClient(hc)); err != nil {
		r.add(Result{ID: "zuora.config", Assumption: "the Zuora settings make a client", Status: Fail, Evidence: err.Error(),
			Fix: "set zuora.base_url, zuora.client_id and zuora.client_secret"})
	} else {
		r.zuoraChecks(ctx, zc)
	}
	if lc, err := r.limioClient(cfg.Dialect); err != nil {
		r.add(Result{ID: "limio.config", Assumption: "the Limio settings make a client", Status: Fail, Evidence: err.Error(),
			Fix: "set limio.base_url, limio.client_id and limio.client_secret, and the limio.* dialect keys"})
	} else {
		r.limioChecks(ctx, lc)
	}
	for _, res := range r.rep.Results {
		switch res.Status {
		case Pass:
			r.rep.Pass++
		case Fail:
			r.rep.Fail++
		default:
			r.rep.Unknown++
		}
	}
	r.rep.OK = r.rep.Fail == 0
	return r.rep
}

type runner struct {
	cfg Config
	rec *recorder
	hc  *http.Client
	rep Report
}

// limioClient is a Limio client speaking d through the recorder.
func (r *runner) limioClient(d limio.Dialect) (*limio.Client, error) {
	opts := []limio.Option{limio.WithHTTPClient(r.hc), limio.WithDialect(d)}
	if r.cfg.Index != nil {
		opts = append(opts, limio.WithIndex(r.cfg.Index))
	}
	return limio.New(r.cfg.Limio, opts...)
}

func (r *runner) add(res Result) { r.rep.Results = append(r.rep.Results, res) }

// from fills a result's request and status from an exchange.
func (res Result) from(ex *exchange) Result {
	if ex != nil {
		res.Request, res.HTTPStatus = ex.request(), ex.status
	}
	return res
}

// errResult is the result of a check whose call failed: the failure's
// evidence, and fail when the failure is the assumption's, else unknown.
func errResult(res Result, ex *exchange, err error, decides bool) Result {
	res = res.from(ex)
	res.Status = Unknown
	if decides {
		res.Status = Fail
	}
	res.Evidence = errText(err)
	return res
}

func errText(err error) string {
	var ue *upstream.Error
	if errors.As(err, &ue) {
		return ue.Error()
	}
	return err.Error()
}

// WriteText prints the report for people: one line per check (verdict, id,
// request → status, evidence), the touched object and the fix indented under
// it, then the summary.
func (rep Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, res := range rep.Results {
		line := fmt.Sprintf("%-7s %-34s", strings.ToUpper(string(res.Status)), res.ID)
		if res.Request != "" {
			line += " " + res.Request
			if res.HTTPStatus != 0 {
				line += fmt.Sprintf(" → %d", res.HTTPStatus)
			}
			line += ":"
		}
		b.WriteString(line + " " + res.Evidence + "\n")
		if res.Touched != "" {
			b.WriteString("        touched: " + res.Touched + "\n")
		}
		if res.Fix != "" && res.Status == Fail {
			b.WriteString("        fix: " + res.Fix + "\n")
		}
	}
	verdict := "every checked assumption holds"
	if !rep.OK {
		verdict = "zsync's assumptions do NOT all hold on these tenants: fix the failures before syncing"
	} else if rep.Unknown > 0 {
		verdict = "no assumption failed; the unknown ones need the evidence named above"
	}
	fmt.Fprintf(&b, "\n%d pass, %d fail, %d unknown: %s\n", rep.Pass, rep.Fail, rep.Unknown, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as indented JSON.
func (rep Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
