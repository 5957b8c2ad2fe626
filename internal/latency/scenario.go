package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/runner"
	"github.com/reconf/reconf/resource"
)

// setup is a conf dir with resources rendering into out/.
type setup struct {
	tb   *fakeTB
	dir  string
	out  string
	defs resource.Defaults
}

func newSetup(tb *fakeTB, log *slog.Logger) *setup {
	dir := tb.TempDir()
	s := &setup{tb: tb, dir: dir, out: filepath.Join(dir, "out")}
	for _, d := range []string{"conf.d", "templates", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	s.defs = resource.Defaults{ConfDir: dir, Log: log, CheckTimeout: 10 * time.Second, ReloadTimeout: 10 * time.Second}
	return s
}

// add writes a resource: name renders `v={{getv key}}` into out/name.
func (s *setup) add(name, key, extra string) {
	tmpl := fmt.Sprintf(`v={{getv %q ""}}`, key)
	if err := os.WriteFile(filepath.Join(s.dir, "templates", name+".tmpl"), []byte(tmpl), 0o644); err != nil {
		s.tb.Fatal(err)
	}
	toml := fmt.Sprintf("[template]\nsrc = %q\ndest = %q\nkeys = [%q]\n%s\n", name+".tmpl", filepath.Join(s.out, name), key, extra)
	if err := os.WriteFile(filepath.Join(s.dir, "conf.d", name+".toml"), []byte(toml), 0o644); err != nil {
		s.tb.Fatal(err)
	}
}

// run starts the runner in watch mode; stop cancels it and waits.
func (s *setup) run(b backends.Backend, log *slog.Logger) (stop func()) {
	list, err := resource.Load(s.defs)
	if err != nil {
		s.tb.Fatal(err)
	}
	r, err := runner.New(runner.Config{Resources: list, Backend: b, Defaults: s.defs, Watch: true, Log: log})
	if err != nil {
		s.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			s.tb.Errorf("runner: %v", err)
		}
	}
}

// fileWatch reports when files in a folder change.
type fileWatch struct {
	fw *fsnotify.Watcher
}

func watchDir(tb *fakeTB, dir string) *fileWatch {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		tb.Fatal(err)
	}
	if err := fw.Add(dir); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = fw.Close() })
	return &fileWatch{fw: fw}
}

// until waits until file holds want, re-reading it on every event that names it (and every
// 50ms in case an event was merged away). Events for other files, such as the stage file
// being written, are not acted on: reading then would take CPU from the runner measured.
// It fails after timeout.
func (w *fileWatch) until(file, want string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	read := true
	for {
		if read {
			if b, err := os.ReadFile(file); err == nil && string(b) == want {
				return nil
			}
		}
		select {
		case ev := <-w.fw.Events:
			read = ev.Name == file
		case err := <-w.fw.Errors:
			return err
		case <-tick.C:
			read = true
		case <-deadline.C:
			b, _ := os.ReadFile(file)
			return fmt.Errorf("%s: want %q after %v, have %q", file, want, timeout, b)
		}
	}
}

// drain drops pending events.
func (w *fileWatch) drain() {
	for {
		select {
		case <-w.fw.Events:
		default:
			return
		}
	}
}

type latencies struct{ p50, p95, p99, max, putP50 time.Duration }

func summarize(d []time.Duration) latencies {
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(float64(len(d))*p))] }
	return latencies{p50: q(0.50), p95: q(0.95), p99: q(0.99), max: d[len(d)-1]}
}

// measureLatency writes one key n times and times each change, from issuing the put (its
// own round trip included) to the file holding the value; putP50 is the puts' own share.
// extra is added to the resource's TOML (a check_cmd, say).
func measureLatency(tb *fakeTB, b backends.Backend, w writer, n int, gap time.Duration, extra string, log *slog.Logger) latencies {
	s := newSetup(tb, log)
	s.add("lat", "/lat/k", extra)
	ctx := context.Background()
	if err := w.put(ctx, "/lat/k", "init"); err != nil {
		tb.Fatalf("put: %v", err)
	}
	fw := watchDir(tb, s.out)
	stop := s.run(b, log)
	defer stop()
	out := filepath.Join(s.out, "lat")
	if err := fw.until(out, "v=init", 30*time.Second); err != nil {
		tb.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the watch arm: we measure steady state
	var d, puts []time.Duration
	for i := range n {
		time.Sleep(gap) // pacing: each write is an isolated change
		fw.drain()
		v := strconv.Itoa(i)
		t0 := time.Now()
		if err := w.put(ctx, "/lat/k", v); err != nil {
			tb.Fatalf("put %d: %v", i, err)
		}
		puts = append(puts, time.Since(t0))
		if err := fw.until(out, "v="+v, 10*time.Second); err != nil {
			tb.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	l := summarize(d)
	l.putP50 = summarize(puts).p50
	return l
}

type burstResult struct {
	reloads   int
	final     time.Duration // first put → file holds the last value
	afterLast time.Duration // the last put returned → file holds its value
	writes    time.Duration // time the client took for all puts
}

// measureBurst writes one key n times as fast as the client goes to a resource with the given
// wait (a TOML string, or "" for none).
func measureBurst(tb *fakeTB, b backends.Backend, w writer, n int, wait string, log *slog.Logger) burstResult {
	s := newSetup(tb, log)
	count := filepath.Join(s.dir, "reloads")
	extra := fmt.Sprintf("reload_cmd = \"echo >> %s\"", count)
	if wait != "" {
		extra = "wait = " + wait + "\n" + extra
	}
	s.add("burst", "/burst/k", extra)
	ctx := context.Background()
	if err := w.put(ctx, "/burst/k", "init"); err != nil {
		tb.Fatalf("put: %v", err)
	}
	fw := watchDir(tb, s.out)
	stop := s.run(b, log)
	defer stop()
	out := filepath.Join(s.out, "burst")
	if err := fw.until(out, "v=init", 30*time.Second); err != nil {
		tb.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the watch arm
	before := lines(count)
	t0 := time.Now()
	for i := range n {
		if err := w.put(ctx, "/burst/k", strconv.Itoa(i)); err != nil {
			tb.Fatalf("put %d: %v", i, err)
		}
	}
	writes := time.Since(t0)
	if err := fw.until(out, "v="+strconv.Itoa(n-1), 30*time.Second); err != nil {
		tb.Fatal(err)
	}
	final := time.Since(t0)
	time.Sleep(time.Second) // a late render would show up as an extra reload
	return burstResult{reloads: lines(count) - before, final: final, afterLast: final - writes, writes: writes}
}

func lines(file string) int {
	b, _ := os.ReadFile(file)
	return strings.Count(string(b), "\n")
}

type startResult struct {
	took    time.Duration
	rssMB   float64
	idleCPU float64 // percent of one core while the k resources sat watching, nothing changing
}

// measureStart starts k resources over 5 prefixes and times until all rendered, then
// measures the CPU the process uses over idle while nothing changes.
func measureStart(tb *fakeTB, b backends.Backend, w writer, k int, idle time.Duration, log *slog.Logger) startResult {
	s := newSetup(tb, log)
	ctx := context.Background()
	for i := range k {
		key := fmt.Sprintf("/start/g%d/r%02d", i%5, i)
		if err := w.put(ctx, key, "x"+strconv.Itoa(i)); err != nil {
			tb.Fatalf("put: %v", err)
		}
		s.add(fmt.Sprintf("r%02d", i), fmt.Sprintf("/start/g%d", i%5), "")
	}
	// each resource reads its whole group; the template prints its own key
	for i := range k {
		tmpl := fmt.Sprintf(`v={{getv "/start/g%d/r%02d"}}`, i%5, i)
		if err := os.WriteFile(filepath.Join(s.dir, "templates", fmt.Sprintf("r%02d.tmpl", i)), []byte(tmpl), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	fw := watchDir(tb, s.out)
	t0 := time.Now()
	stop := s.run(b, log)
	defer stop()
	for i := range k {
		if err := fw.until(filepath.Join(s.out, fmt.Sprintf("r%02d", i)), "v=x"+strconv.Itoa(i), 30*time.Second); err != nil {
			tb.Fatal(err)
		}
	}
	took := time.Since(t0)
	runtime.GC()
	res := startResult{took: took, rssMB: rss()}
	if idle > 0 {
		if prof := os.Getenv("RECONF_IDLE_PROFILE"); prof != "" { // where the idle CPU goes
			if f, err := os.Create(prof); err == nil {
				if pprof.StartCPUProfile(f) == nil {
					defer func() { pprof.StopCPUProfile(); f.Close() }()
				}
			}
		}
		// Watches that come up after the first render signal once (a change made before
		// they were in place would be lost otherwise), and each resource re-reads once:
		// start-up work, not idling. Let it pass before measuring.
		time.Sleep(2 * time.Second)
		c0, t1 := cpuTime(), time.Now()
		time.Sleep(idle) // the measurement: the process is left alone
		res.idleCPU = 100 * float64(cpuTime()-c0) / float64(time.Since(t1))
	}
	return res
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss returns this process's resident set in MiB.
func rss() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
