package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDevCurls runs `zsync dev` as a process, follows the curls it prints,
// and expects them to show an updated outcome — what a newcomer does first.
func TestDevCurls(t *testing.T) {
	t.Parallel()
	ia, za, la := freeAddr(t), freeAddr(t), freeAddr(t)
	p := startProc(t, "dev", []string{"ZSYNC_LOG_LEVEL=warn"}, "dev", "--http-addr", ia, "--zuora-addr", za, "--limio-addr", la)
	waitHTTP(t, p, "http://"+ia+"/healthz", 20*time.Second)

	var curls []string
	eventually(t, 10*time.Second, "the printed curls", func() bool {
		curls = regexp.MustCompile(`curl -s (?:-X POST )?(http://\S+)`).FindAllString(p.out.String(), -1)
		return len(curls) >= 3
	})
	var trigger, outcome string
	for _, c := range curls {
		switch {
		case strings.Contains(c, "-X POST"):
			trigger = strings.Fields(c)[4]
		case strings.HasSuffix(c, "/sync"):
			outcome = strings.Fields(c)[2]
		}
	}
	if trigger == "" || outcome == "" {
		t.Fatalf("curls not found in output:\n%s", p.out.String())
	}
	resp, err := http.Post(trigger, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trigger curl: %d", resp.StatusCode)
	}
	eventually(t, 20*time.Second, "an updated outcome", func() bool {
		resp, err := http.Get(outcome)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var out struct {
			Latest struct {
				Outcome string          `json:"outcome"`
				Changes json.RawMessage `json:"changes"`
			} `json:"latest"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return out.Latest.Outcome == "updated" && len(out.Latest.Changes) > 2
	})
	// It checked its own sandboxes at start, and every assumption held.
	eventually(t, 10*time.Second, "the check report", func() bool { return strings.Contains(p.out.String(), " 0 fail, ") })
	p.stop(t, 15*time.Second)
}
