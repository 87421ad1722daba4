package bench

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/logging"
)

// Every scenario adds rows to one table, printed once after the benchmarks
// ran (TestMain), with the machine it ran on. A missed target prints FAIL; it
// fails the run only with ZSYNC_BENCH_STRICT=1, so a known miss doesn't hide
// the other figures.

type row struct {
	scenario, measured, reference, ratio, target, result string
}

var (
	tableMu sync.Mutex
	table   []row
	notes   []string
	failed  []string
)

// addRow records a figure. pass is nil for figures without a target (info).
func addRow(scenario, measured, reference, ratio, target string, pass *bool) {
	res := "info"
	if pass != nil {
		res = "PASS"
		if !*pass {
			res = "FAIL"
		}
	}
	tableMu.Lock()
	defer tableMu.Unlock()
	table = append(table, row{scenario, measured, reference, ratio, target, res})
	if res == "FAIL" {
		failed = append(failed, scenario)
	}
}

func addNote(format string, args ...any) {
	tableMu.Lock()
	defer tableMu.Unlock()
	notes = append(notes, fmt.Sprintf(format, args...))
}

func check(ok bool) *bool { return &ok }

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	code := m.Run()
	tableMu.Lock()
	defer tableMu.Unlock()
	if len(table) == 0 {
		os.Exit(code)
	}
	fmt.Printf("\nzsync performance (%s)\n\n", machine())
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tmeasured\treference (same run)\tratio\ttarget\tresult")
	fmt.Fprintln(w, "--------\t--------\t-------------------\t-----\t------\t------")
	for _, r := range table {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.scenario, r.measured, dash(r.reference), dash(r.ratio), dash(r.target), r.result)
	}
	_ = w.Flush()
	if len(notes) > 0 {
		fmt.Println()
		for _, n := range notes {
			fmt.Println("- " + n)
		}
	}
	fmt.Println()
	if len(failed) > 0 && os.Getenv("ZSYNC_BENCH_STRICT") == "1" && code == 0 {
		fmt.Printf("targets missed: %s\n", strings.Join(failed, "; "))
		code = 1
	}
	os.Exit(code)
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// machine describes where the figures were taken.
func machine() string {
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s RAM, %s %s/%s, %s", runtime.NumCPU(), mem, runtime.Version(),
		runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

// prodLogger is the logger `zsync serve` and `zsync work` build with the
// default log config (JSON, info, buffered, no sampling), writing to
// /dev/null: the encoding and the write cost what they cost in production.
func prodLogger(b testing.TB) *zap.Logger {
	b.Helper()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = devNull.Close() })
	log, err := logging.New("info", "json", devNull) // exactly what zsync serve and work build
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = log.Sync() })
	return log
}

// percentile returns the p-th percentile (0–100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// once runs a scenario a single time per process whatever b.N is: every
// scenario is a fixed-duration load test, not a loop body.
var (
	onceMu sync.Mutex
	ran    = map[string]bool{}
)

func once(b *testing.B, name string, fn func(b *testing.B)) {
	b.Helper()
	onceMu.Lock()
	done := ran[name]
	ran[name] = true
	onceMu.Unlock()
	if done {
		return
	}
	fn(b)
}

// cpuSample is the machine's and this process's CPU time at one instant, to
// tell a slow figure from a busy machine (other processes included).
type cpuSample struct {
	at          time.Time
	busy, total float64 // machine, jiffies from /proc/stat
	self        time.Duration
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			s.total += v
			if i != 3 && i != 4 { // idle, iowait
				s.busy += v
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// cpuSince describes the CPU use between two samples: how busy the whole
// machine was, and how many cores this process used.
func cpuSince(a, b cpuSample) string {
	machine := 0.0
	if b.total > a.total {
		machine = 100 * (b.busy - a.busy) / (b.total - a.total)
	}
	self := float64(b.self-a.self) / float64(b.at.Sub(a.at))
	return fmt.Sprintf("machine CPU %.0f%% busy, this process %.2f cores", machine, self)
}

// envInt is the integer in environment variable name, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}
