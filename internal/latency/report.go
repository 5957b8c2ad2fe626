package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// goal is one target of issue 3: a limit on one figure for some backends (the others are
// reported without a verdict).
type goal struct {
	what     string
	limit    float64 // in the figure's unit
	unit     string  // "ms" or "MiB"
	backends map[string]bool
	figure   func(r row) float64
	cpu      func(r row) time.Duration // optional: CPU time behind the figure
}

func on(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var stores = on("etcd", "consul", "zookeeper", "redis")

func cpuGets(r row) time.Duration  { return r.Onetime.Gets.CPU }
func cpuLs(r row) time.Duration    { return r.Onetime.Ls.CPU }
func cpuMulti(r row) time.Duration { return r.Onetime.Multi.CPU }

var goals = []goal{
	{"100k keys, gets, -onetime", 300, "ms", on("etcd"), func(r row) float64 { return msOf(r.Onetime.Gets.Took) }, cpuGets},
	{"100k keys, gets, -onetime", 450, "ms", on("consul"), func(r row) float64 { return msOf(r.Onetime.Gets.Took) }, cpuGets},
	{"100k keys, gets, peak RSS", 50, "MiB", on("etcd", "consul"), func(r row) float64 { return r.Onetime.Gets.RSSMiB }, nil},
	{"100k keys, ls+getv, -onetime", 300, "ms", on("etcd"), func(r row) float64 { return msOf(r.Onetime.Ls.Took) }, cpuLs},
	{"100k keys, ls+getv, -onetime", 450, "ms", on("consul"), func(r row) float64 { return msOf(r.Onetime.Ls.Took) }, cpuLs},
	{"100k keys, ls+getv, peak RSS", 50, "MiB", on("etcd", "consul"), func(r row) float64 { return r.Onetime.Ls.RSSMiB }, nil},
	{"50 res × 1k keys, -onetime", 200, "ms", on("etcd"), func(r row) float64 { return msOf(r.Onetime.Multi.Took) }, cpuMulti},
	{"50 res × 1k keys, peak RSS", 0, "MiB", nil, func(r row) float64 { return r.Onetime.Multi.RSSMiB }, nil},
	{"change→file p50", 2, "ms", stores, func(r row) float64 { return msOf(r.P50) }, nil},
	{"change→file p95", 5, "ms", stores, func(r row) float64 { return msOf(r.P95) }, nil},
	{"change→file p50, +unrelated keys", 2, "ms", stores, func(r row) float64 { return msOf(r.NoiseP50) }, nil},
	{"change→file p95, +unrelated keys", 5, "ms", stores, func(r row) float64 { return msOf(r.NoiseP95) }, nil},
	{"change→file p50, check_cmd", 0, "ms", nil, func(r row) float64 { return msOf(r.CheckP50) }, nil},
	{"change burst, wait 50ms:500ms: reloads", 3, "", stores, func(r row) float64 { return float64(r.Reloads) }, nil},
	{"change burst, wait 50ms:500ms: last put→file", 0, "ms", nil, func(r row) float64 { return msOf(r.BurstLast) }, nil},
	{"change burst, no wait: reloads", 3, "", stores, func(r row) float64 { return float64(r.ReloadsNoWait) }, nil},
	{"change burst, no wait: last put→file", 50, "ms", stores, func(r row) float64 { return msOf(r.NoWaitLast) }, nil},
	{"change 50 res watching: idle CPU", 0.1, "%", stores, func(r row) float64 { return r.IdleCPU }, nil},
	{"change 50 res: start to all rendered", 500, "ms", stores, func(r row) float64 { return msOf(r.StartTook) }, nil},
	{"change 50 res: RSS", 40, "MiB", stores, func(r row) float64 { return r.RSSMiB }, nil},
}

// printTargets prints one line per scenario and backend: the target (or "-" where the issue
// asks only for the figure), the measured value and PASS or MISS.
func printTargets(rows []row, pa params) {
	fmt.Printf("\nissue 3 targets (onetime: median of %d runs of the reconf binary, wall time from exec to exit,\n"+
		"peak RSS = the child's VmHWM; unrelated keys: %d under /noise; the store also holds the other scenarios' keys)\n\n", pa.runs, pa.noise)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\tbackend\ttarget\tmeasured\tverdict\treconf CPU\n")
	seen := map[string]bool{}
	for _, g := range goals {
		if seen[g.what] {
			continue
		}
		seen[g.what] = true
		for _, r := range rows {
			watchRow := strings.HasPrefix(g.what, "change")
			if r.Err != "" || (!watchRow && r.Onetime == (onetimeFigures{})) || (watchRow && r.P50 == 0) ||
				(pa.noise == 0 && strings.Contains(g.what, "unrelated keys")) {
				continue // failed, or these scenarios were skipped
			}
			judged := g
			found := false
			for _, h := range goals {
				if h.what == g.what && h.backends[r.Name] {
					judged, found = h, true
					break
				}
			}
			v := judged.figure(r)
			cpu := ""
			if judged.cpu != nil {
				cpu = ms(judged.cpu(r))
			}
			if !found {
				fmt.Fprintf(tw, "%s\t%s\t-\t%.1f %s\t\t%s\n", g.what, r.Name, v, g.unit, cpu)
				continue
			}
			verdict := "PASS"
			if v > judged.limit {
				verdict = "MISS"
			}
			fmt.Fprintf(tw, "%s\t%s\t≤ %g %s\t%.1f %s\t%s\t%s\n", g.what, r.Name, judged.limit, g.unit, v, g.unit, verdict, cpu)
		}
	}
	_ = tw.Flush()
}
