package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reconf/reconf/backends"
)

// row is one backend's figures (JSON between the parent and a child process).
type row struct {
	Name                   string
	P50, P95, P99, Max     time.Duration
	PutP50                 time.Duration // the store's own write round trip
	BurstPuts, BurstFinal  time.Duration
	BurstLast              time.Duration // the last put of the burst → the file holds it
	Reloads                int
	NoWaitPuts, NoWaitLast time.Duration // the same burst without a wait
	ReloadsNoWait          int
	// put→file with a check_cmd (an external program, as most are)
	CheckP50, CheckP95 time.Duration
	IdleCPU            float64
	StartTook          time.Duration
	RSSMiB             float64
	// with 50,000 unrelated keys in the store
	NoiseP50, NoiseP95 time.Duration
	// -onetime runs of the reconf binary (zero when skipped)
	Onetime onetimeFigures
	Err     string
}

// params are what the parent passes to each child.
type params struct {
	n, burst, k, runs, noise int
	warmup                   int
	gap, idle                time.Duration
	bin                      string
	onetimeOnly, verbose     bool
	settle                   time.Duration // -many: when to count connections and queries again
}

func main() {
	n := flag.Int("n", 200, "writes for the latency measurement")
	burst := flag.Int("burst", 1000, "writes in the burst")
	idle := flag.Duration("idle", 30*time.Second, "how long to measure idle CPU with the resources watching (-quick: 5s)")
	gap := flag.Duration("gap", 250*time.Millisecond, "pause between two latency writes: each is an isolated change, as in production (back to back, the runner's -min-interval would be measured instead)")
	k := flag.Int("resources", 50, "resources for the start measurement")
	only := flag.String("backends", "", "comma-separated backends to measure (default: all)")
	verbose := flag.Bool("v", false, "show the runner's log (warnings and up)")
	runs := flag.Int("runs", 5, "runs of each -onetime scenario (the median is reported)")
	noise := flag.Int("noise", 50_000, "unrelated keys in the store for the second latency measurement")
	warmup := flag.Int("warmup", 3000, "writes and reads of an unwatched key before the watch measurements: long-running stores are warm (ZooKeeper's JIT alone takes its writes from ~3 to ~1.9 ms)")
	quick := flag.Bool("quick", os.Getenv("RECONF_BENCH_QUICK") != "", "fewer writes and runs (also $RECONF_BENCH_QUICK)")
	bin := flag.String("bin", "", "the reconf binary for the -onetime scenarios (default: go build ./cmd/reconf; \"none\" skips them)")
	onetimeOnly := flag.Bool("onetime-only", false, "only the -onetime scenarios")
	settle := flag.Duration("settle", 95*time.Second, "-many: count connections and blocking queries again after this (Consul holds a cancelled query until its wait ends; idle connections close after 90 s)")
	many := flag.Bool("many", false, "only the -many scenario on Consul: -resources resources on prefixes under one folder, -n writes, beside -noise unrelated keys (issue 14)")
	child := flag.Bool("child", false, "measure the one backend named by -backends and print JSON (used internally)")
	flag.Parse()
	if *quick {
		*n, *burst, *runs, *idle = min(*n, 60), min(*burst, 300), min(*runs, 3), min(*idle, 5*time.Second)
	}
	pa := params{settle: *settle, idle: *idle, gap: *gap, n: *n, burst: *burst, k: *k, runs: *runs, noise: *noise, warmup: *warmup, bin: *bin, onetimeOnly: *onetimeOnly, verbose: *verbose}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	slog.SetDefault(log)
	if *many {
		if err := runMany(pa, log); err != nil {
			fmt.Fprintln(os.Stderr, "latency:", err)
			os.Exit(1)
		}
		return
	}
	if *child {
		for _, t := range targets {
			if t.name == *only {
				_ = json.NewEncoder(os.Stdout).Encode(measure(t, pa, log))
				return
			}
		}
		fmt.Fprintf(os.Stderr, "latency: unknown backend %q\n", *only)
		os.Exit(2)
	}
	// Each backend runs in a child process of its own, so that RSS is that backend's alone.
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
	if pa.bin == "" {
		fmt.Fprintln(os.Stderr, "building reconf…")
		b, cleanup, err := buildReconf()
		if err != nil {
			fmt.Fprintln(os.Stderr, "latency:", err)
			os.Exit(1)
		}
		defer cleanup()
		pa.bin = b
	}
	var rows []row
	failed := false
	for _, t := range targets {
		if *only != "" && !contains(strings.Split(*only, ","), t.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "measuring %s…\n", t.name)
		args := []string{"-child", "-backends", t.name, "-n", strconv.Itoa(pa.n), "-burst", strconv.Itoa(pa.burst), "-gap", pa.gap.String(), "-idle", pa.idle.String(),
			"-resources", strconv.Itoa(pa.k), "-runs", strconv.Itoa(pa.runs), "-noise", strconv.Itoa(pa.noise), "-warmup", strconv.Itoa(pa.warmup),
			"-bin", pa.bin, "-v=" + strconv.FormatBool(*verbose), "-onetime-only=" + strconv.FormatBool(pa.onetimeOnly)}
		cmd := exec.Command(self, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		r := row{Name: t.name}
		if err == nil {
			err = json.Unmarshal(out, &r)
		}
		if err != nil && r.Err == "" {
			r.Err = err.Error()
		}
		failed = failed || r.Err != ""
		rows = append(rows, r)
	}
	if !pa.onetimeOnly {
		print(rows, pa)
	}
	printTargets(rows, pa)
	if failed {
		os.Exit(1) // a MISS is a figure, not a failure; only errors fail the run
	}
}

// measure runs the three measurements on one backend; a failure is reported in the row.
func measure(t target, pa params, log *slog.Logger) (r row) {
	r.Name = t.name
	tb := newTB(t.name)
	defer tb.Close()
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			r.Err = f.Msg
		}
	}()
	b, w := t.start(tb)
	defer w.close()
	if !pa.onetimeOnly {
		measureWatch(&r, tb, b, w, pa, log)
	}
	if pa.bin != "none" {
		r.Onetime = measureOnetime(tb, w, pa.bin, pa.runs, pa.verbose)
	}
	if tb.Failed() && r.Err == "" {
		r.Err = "errors logged above"
	}
	return r
}

// warm writes and reads an unwatched key n times, so that the store runs as a long-running
// one does (a JVM has compiled its hot paths, caches are filled) before anything is timed.
func warm(tb *fakeTB, b backends.Backend, w writer, n int) {
	ctx := context.Background()
	for i := range n {
		if err := w.put(ctx, "/warmup/k", strconv.Itoa(i)); err != nil {
			tb.Fatalf("warm-up put: %v", err)
		}
		if _, err := b.Get(ctx, []string{"/warmup"}); err != nil {
			tb.Fatalf("warm-up get: %v", err)
		}
	}
}

// checkCmd is the check_cmd of the check latency scenario: a program, not a shell builtin,
// that reads the stage file.
const checkCmd = `check_cmd = "grep -q v= {{.src}}"`

// measureWatch runs the watch-mode measurements: latency, burst, start, and latency again
// with pa.noise unrelated keys in the store.
func measureWatch(r *row, tb *fakeTB, b backends.Backend, w writer, pa params, log *slog.Logger) {
	warm(tb, b, w, pa.warmup)
	lat := measureLatency(tb, b, w, pa.n, pa.gap, "", log)
	r.P50, r.P95, r.P99, r.Max, r.PutP50 = lat.p50, lat.p95, lat.p99, lat.max, lat.putP50
	lat = measureLatency(tb, b, w, pa.n, pa.gap, checkCmd, log)
	r.CheckP50, r.CheckP95 = lat.p50, lat.p95
	bu := measureBurst(tb, b, w, pa.burst, `"50ms:500ms"`, log)
	r.BurstPuts, r.BurstFinal, r.BurstLast, r.Reloads = bu.writes, bu.final, bu.afterLast, bu.reloads
	bu = measureBurst(tb, b, w, pa.burst, "", log)
	r.NoWaitPuts, r.NoWaitLast, r.ReloadsNoWait = bu.writes, bu.afterLast, bu.reloads
	st := measureStart(tb, b, w, pa.k, pa.idle, log)
	r.StartTook, r.RSSMiB, r.IdleCPU = st.took, st.rssMB, st.idleCPU
	if pa.noise > 0 {
		if err := w.load(context.Background(), dataset("/noise", pa.noise, 100)); err != nil {
			tb.Fatalf("load /noise: %v", err)
		}
		lat = measureLatency(tb, b, w, pa.n, pa.gap, "", log)
		r.NoiseP50, r.NoiseP95 = lat.p50, lat.p95
	}
}

func print(rows []row, pa params) {
	n, burst, k := pa.n, pa.burst, pa.k
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "backend\tp50\tp95\tp99\tmax\tput p50\tcheck p50\tcheck p95\tburst puts\tburst→final\tlast→final\treloads\tno wait: puts\tlast→final\treloads\tstart %d res\tRSS MiB\tidle CPU\t\n", k)
	for _, r := range rows {
		if r.Err != "" {
			fmt.Fprintf(tw, "%s\tFAILED: %s\t\n", r.Name, r.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%.1f\t%.3f%%\t\n", r.Name,
			ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max), ms(r.PutP50), ms(r.CheckP50), ms(r.CheckP95),
			ms(r.BurstPuts), ms(r.BurstFinal), ms(r.BurstLast), r.Reloads, ms(r.NoWaitPuts), ms(r.NoWaitLast), r.ReloadsNoWait, ms(r.StartTook), r.RSSMiB, r.IdleCPU)
	}
	_ = tw.Flush()
	fmt.Printf("\nlatency: put→file over %d isolated writes (wait 0, %s apart), from issuing the put (put p50: the put's own round trip), after %d warm-up writes and reads; burst: %d puts in a row, wait 50ms:500ms, reloads = reload_cmd runs (no wait: the same burst without a wait),\n"+
		"check: the same with check_cmd = \"grep -q v= {{.src}}\"; burst→final = first put to the last value on disk, last→final = from the last put's return; start: %d resources over 5 prefixes in watch mode, until every\n"+
		"file rendered; RSS of the measuring process (runner + writing client, one process per backend) after that; idle CPU: that\n"+
		"process's CPU over %s with the %d resources watching and nothing changing, in %% of one core.\n", n, pa.gap, pa.warmup, burst, k, pa.idle, k)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}
