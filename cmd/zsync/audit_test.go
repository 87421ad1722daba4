package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuditCommand runs `zsync audit` against the sandboxes: a JSON-lines and
// a CSV drift report, exit 0 with drift, non-zero on errors, and not one
// write to Limio.
func TestAuditCommand(t *testing.T) {
	t.Parallel()
	u := newBulkEnv(t)
	file := bulkWriteFile(t, "ids.txt", bulkIDFile)

	r := u.run(t, 60*time.Second, "", "audit", file)
	if r.code != 1 {
		t.Fatalf("exit %d; want 1 (an invalid id)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	type row struct {
		Subscription string           `json:"subscription"`
		Outcome      string           `json:"outcome"`
		Changes      []map[string]any `json:"changes"`
		Error        string           `json:"error"`
	}
	var rows []row
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var x row
		if err := json.Unmarshal([]byte(line), &x); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		rows = append(rows, x)
	}
	want := []struct{ sub, outcome string }{
		{"A-S00000201", "updated"}, {"A-S00000202", "updated"}, {"A-S00000203", "created"},
		{"A-S00000204", "updated"}, {"not an id", "invalid"}, {"A-S09999999", "not_found"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows; want %d:\n%s", len(rows), len(want), r.stdout)
	}
	for i, w := range want {
		got := rows[i]
		if got.Subscription != w.sub || got.Outcome != w.outcome {
			t.Errorf("row %d = %s %s; want %s %s", i, got.Subscription, got.Outcome, w.sub, w.outcome)
		}
		if (w.outcome == "updated" || w.outcome == "created") && len(got.Changes) == 0 {
			t.Errorf("row %d (%s): drift without changes", i, w.sub)
		}
		if (w.outcome == "invalid" || w.outcome == "not_found") && got.Error == "" {
			t.Errorf("row %d (%s): no error", i, w.sub)
		}
	}
	if !strings.Contains(r.stderr, "DRIFT: 6 subscriptions, 4 drifted") || !strings.Contains(r.stderr, "1 errors") {
		t.Errorf("stderr = %q", r.stderr)
	}

	// By Zuora query, CSV to a file: drift only, exit 0.
	out := filepath.Join(t.TempDir(), "drift.csv")
	r = u.run(t, 60*time.Second, "", "audit", "--status", "Active", "--csv", "--out", out)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("csv: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 || strings.Join(recs[0], ",") != "subscription,limio_id,outcome,object,id,op,field,old,new,error" {
		t.Fatalf("csv = %q", recs)
	}
	subs := map[string]bool{}
	for _, rec := range recs[1:] {
		subs[rec[0]] = true
		if rec[2] != "updated" && rec[2] != "created" && rec[2] != "unchanged" {
			t.Errorf("csv row %q", rec)
		}
		if rec[2] == "updated" && rec[6] == "" {
			t.Errorf("csv drift row without a field: %q", rec)
		}
	}
	if subs["A-S00000202"] || !subs["A-S00000201"] {
		t.Errorf("active subscriptions in the csv: %v (A-S00000202 is cancelled in Zuora)", subs)
	}

	// A Zuora error is an error row and a non-zero exit.
	u.fault(t, u.zuora, `{"method":"GET","path":"/v1/subscriptions/A-S00000201","status":503,"count":1}`)
	r = u.run(t, 60*time.Second, "A-S00000201\n", "audit", "-")
	if r.code != 1 || !strings.Contains(r.stdout, `"outcome":"failed"`) {
		t.Errorf("upstream error: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	if n := u.limioPUTs(t); n != 0 {
		t.Errorf("audit wrote to Limio: %d PUTs", n)
	}
}
