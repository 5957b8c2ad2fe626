package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

type row struct {
	name  string
	lat   latencies
	burst burstResult
	start startResult
	err   string
}

func main() {
	n := flag.Int("n", 200, "writes for the latency measurement")
	burst := flag.Int("burst", 1000, "writes in the burst")
	k := flag.Int("resources", 50, "resources for the start measurement")
	only := flag.String("backends", "", "comma-separated backends to measure (default: all)")
	verbose := flag.Bool("v", false, "show the runner's log (warnings and up)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	var rows []row
	failed := false
	for _, t := range targets {
		if *only != "" && !contains(strings.Split(*only, ","), t.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "measuring %s…\n", t.name)
		r := measure(t, *n, *burst, *k, log)
		failed = failed || r.err != ""
		rows = append(rows, r)
	}
	print(rows, *n, *burst, *k)
	if failed {
		os.Exit(1)
	}
}

// measure runs the three measurements on one backend; a failure is reported in the row.
func measure(t target, n, burst, k int, log *slog.Logger) (r row) {
	r.name = t.name
	tb := &fakeTB{name: t.name}
	defer tb.close()
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			r.err = f.msg
		}
	}()
	b, w := t.start(tb)
	defer w.close()
	r.lat = measureLatency(tb, b, w, n, log)
	r.burst = measureBurst(tb, b, w, burst, log)
	r.start = measureStart(tb, b, w, k, log)
	return r
}

func print(rows []row, n, burst, k int) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "backend\tp50\tp95\tp99\tmax\tburst puts\tburst→final\treloads\tstart %d res\tRSS MiB\t\n", k)
	for _, r := range rows {
		if r.err != "" {
			fmt.Fprintf(tw, "%s\tFAILED: %s\t\n", r.name, r.err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.1f\t\n", r.name,
			ms(r.lat.p50), ms(r.lat.p95), ms(r.lat.p99), ms(r.lat.max),
			ms(r.burst.writes), ms(r.burst.final), r.burst.reloads, ms(r.start.took), r.start.rssMB)
	}
	_ = tw.Flush()
	fmt.Printf("\nlatency: put→file over %d writes (wait 0); burst: %d puts, wait 50ms:500ms, reloads = reload_cmd runs;\nstart: %d resources over 5 prefixes in watch mode, until every file rendered; RSS of this process after.\n", n, burst, k)
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
