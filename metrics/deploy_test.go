package metrics

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/zsync/zsync/api"
)

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T, name string) ruleFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", name))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

var seriesRE = regexp.MustCompile(`\b(zsync[_:][a-z0-9_:]+|asynq_[a-z0-9_]+)`)

// The rules and the dashboard read only series zsync (or asynq's collector)
// exports, or the recording rules define; every alert links to a runbook
// section that exists. promtool checks the syntax and the behaviour (make
// test); this checks the names, which promtool can't know.
func TestDeployFilesMatchTheSeries(t *testing.T) {
	t.Parallel()
	m := New()
	m.DeclareRefusals(api.RefusalReasons)
	m.HTTPRequest("/healthz", "GET", 200, 0)
	m.Observer("zuora")("GET /v1/subscriptions/{key}", 200, 0)
	m.lag.WithLabelValues("callout").Observe(1)
	known := map[string]bool{
		// asynq's queue collector (registered only with an inspector).
		"asynq_tasks_enqueued_total": true, "asynq_queue_latency_seconds": true, "asynq_queue_paused_total": true,
		"asynq_queue_size": true,
	}
	for k := range scrape(t, m.Handler()) {
		name, _, _ := strings.Cut(k, "{")
		known[name] = true
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				known[base] = true
			}
		}
	}
	check := func(where, expr string) {
		for _, s := range seriesRE.FindAllString(expr, -1) {
			if !known[s] {
				t.Errorf("%s reads %s, which nothing exports or records", where, s)
			}
		}
	}
	for _, r := range readRules(t, "rules.yml").Groups[0].Rules {
		check("record "+r.Record, r.Expr)
		known[r.Record] = true
	}

	runbook, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range readRules(t, "alerts.yml").Groups {
		for _, r := range g.Rules {
			alerts++
			check("alert "+r.Alert, r.Expr)
			want := "docs/operations.md#" + strings.ToLower(r.Alert)
			if r.Annotations["runbook_url"] != want || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: runbook_url %q, summary %q; want %s and a summary", r.Alert, r.Annotations["runbook_url"], r.Annotations["summary"], want)
			}
			if !strings.Contains(string(runbook), "\n### "+r.Alert+"\n") {
				t.Errorf("alert %s: no \"### %s\" section in docs/operations.md", r.Alert, r.Alert)
			}
		}
	}
	if alerts < 10 {
		t.Errorf("%d alerts; the runbook names more", alerts)
	}

	b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "zsync.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatal("dashboard without uid or panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
}

// The same promtool runs as make test's rules target, so go test alone
// covers the rules too; without promtool it says so and skips.
func TestPromtoolRules(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("SKIPPED: promtool not found; deploy/prometheus NOT checked (apt-get install prometheus)")
	}
	dir := filepath.Join("..", "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "rules.yml", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
