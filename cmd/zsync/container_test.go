package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		PullPolicy  string            `yaml:"pull_policy"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

// docker-compose.yml builds one image once and runs every zsync process
// from it, every service has a healthcheck (zsync ones through zsync probe,
// at an address the process serves), and the worker serves its metrics.
// No Docker engine runs here, so the file's shape is what is checked.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	builds, images := 0, map[string]bool{}
	for name, s := range c.Services {
		if s.Build != nil {
			builds++
		}
		if len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" {
			t.Errorf("%s: no healthcheck", name)
		}
		if name == "redis" {
			continue
		}
		images[s.Image] = true
		if s.Build == nil && s.PullPolicy != "never" {
			t.Errorf("%s: runs the locally built image but may pull it (pull_policy %q)", name, s.PullPolicy)
		}
		if hc := s.Healthcheck.Test; len(hc) != 4 || hc[1] != "/zsync" || hc[2] != "probe" || !strings.HasPrefix(hc[3], "http://127.0.0.1:") {
			t.Errorf("%s: healthcheck %v; want /zsync probe http://127.0.0.1:…", name, hc)
		}
	}
	if builds != 1 || len(images) != 1 || images[""] {
		t.Errorf("%d services build, images %v; want one build of one image used by every zsync service", builds, images)
	}
	w := c.Services["worker"]
	if w.Environment["ZSYNC_WORKER_METRICS_ADDR"] != "0.0.0.0:9090" || !slices.Contains(w.Healthcheck.Test, "http://127.0.0.1:9090/readyz") {
		t.Errorf("worker: metrics addr %q, healthcheck %v; want its listener on :9090 probed at /readyz",
			w.Environment["ZSYNC_WORKER_METRICS_ADDR"], w.Healthcheck.Test)
	}
	if hc := c.Services["ingress"].Healthcheck.Test; !slices.Contains(hc, "http://127.0.0.1:8080/readyz") {
		t.Errorf("ingress healthcheck %v", hc)
	}

	ignore, err := os.ReadFile(filepath.Join("..", "..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(ignore), "\n")
	for _, want := range []string{".git", "bin/"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	if slices.Contains(lines, "cmd/") || slices.Contains(lines, "cmd/zsync/seed") {
		t.Error(".dockerignore excludes the dev seed the image copies")
	}
}

// zsync probe, the containers' healthcheck: exit 0 on a 2xx, 1 otherwise,
// 2 for something that isn't an http URL.
func TestProbeCommand(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	if _, errOut, code := runZsync(t, nil, "probe", srv.URL+"/readyz"); code != 0 {
		t.Errorf("probe of a 200: exit %d %s", code, errOut)
	}
	if _, errOut, code := runZsync(t, nil, "probe", srv.URL+"/down"); code != 1 || !strings.Contains(errOut, "HTTP 503") {
		t.Errorf("probe of a 503: exit %d %s; want 1", code, errOut)
	}
	if _, _, code := runZsync(t, nil, "probe", "ftp://x"); code != 2 {
		t.Errorf("probe of a non-http URL: exit %d; want 2", code)
	}
}
