package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reconf/reconf/internal/testservers"
)

// params are the command line.
type params struct {
	ns          []int
	stores      []string
	k, writes   int
	batch       int
	idle, load  time.Duration
	gap, settle time.Duration
	bin         string
	allNodes    bool     // give every host every member, its own first
	hostFlags   []string // more flags for every host
}

// row is one store with n hosts (n = 0: the baseline, no hosts).
type row struct {
	n            int
	lat          latency
	idle, loaded window
	conns        int
	rssMed       float64
	rssMax       float64
	startTook    time.Duration // starting the hosts added for this row, until each rendered
}

func main() { os.Exit(run()) }

// run runs the benchmark and returns the exit code, after every process it started stopped.
func run() int {
	ns := flag.String("n", "50,100,200", "comma-separated host counts, measured in turn on one cluster per store (the fleet grows)")
	stores := flag.String("stores", "etcd,consul", "comma-separated stores: etcd, consul")
	var pa params
	flag.IntVar(&pa.k, "resources", 50, "resources per host, each on its own prefix /fleet/pNN")
	flag.IntVar(&pa.writes, "writes", 10, "isolated writes timed to the last host, per row")
	flag.IntVar(&pa.batch, "batch", 10, "hosts started at once; each batch waits until its hosts have rendered")
	flag.DurationVar(&pa.idle, "idle", 20*time.Second, "idle window (whole 10 s intervals on Consul)")
	flag.DurationVar(&pa.load, "load", 10*time.Second, "window with a write every 100 ms")
	flag.DurationVar(&pa.gap, "gap", 300*time.Millisecond, "pause before each timed write")
	flag.DurationVar(&pa.settle, "settle", 5*time.Second, "pause after the hosts started, before measuring")
	flag.StringVar(&pa.bin, "bin", "", "the reconf binary (default: built from this tree)")
	flag.BoolVar(&pa.allNodes, "all-nodes", false, "give every host every member with -node, member i mod 3 first (etcd: the client can move a watch; Consul reads the first only)")
	hostFlags := flag.String("host-flags", "", "more flags for every host, split at spaces (e.g. \"-probe-interval 10s\")")
	flag.Parse()
	for _, s := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "fleet: -n: %q is not a host count\n", s)
			return 2
		}
		pa.ns = append(pa.ns, n)
	}
	slices.Sort(pa.ns)
	pa.stores = strings.Split(*stores, ",")
	pa.hostFlags = strings.Fields(*hostFlags)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if pa.bin == "" {
		fmt.Fprintln(os.Stderr, "fleet: building reconf…")
		bin, cleanup, err := testservers.BuildReconf("")
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			return 1
		}
		defer cleanup()
		pa.bin = bin
	}
	failed := false
	for _, name := range pa.stores {
		began := time.Now()
		rows, err := runStore(ctx, strings.TrimSpace(name), pa)
		printTable(name, rows, pa, time.Since(began))
		if err != nil {
			fmt.Fprintf(os.Stderr, "fleet: %s: %v\n", name, err)
			failed = true
		}
		if ctx.Err() != nil {
			break
		}
	}
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// runStore starts the store's cluster, measures it without hosts, then grows the fleet to each
// n and measures it; it stops every process it started before it returns.
func runStore(ctx context.Context, name string, pa params) (rows []row, err error) {
	tb := testservers.NewStandaloneTB("fleet-" + name)
	defer tb.Close()
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(testservers.Fatal)
			if !ok {
				panic(p)
			}
			err = f
		}
	}()
	fmt.Fprintf(os.Stderr, "fleet: %s: starting a 3-member cluster…\n", name)
	s, err := startStore(tb, name)
	if err != nil {
		return nil, err
	}
	for r := range pa.k {
		if err := s.put(ctx, "/fleet/"+resName(r)+"/k", "init"); err != nil {
			return nil, err
		}
	}
	f := &fleet{bin: pa.bin, root: tb.TempDir(), k: pa.k, backend: s.backend, node: s.node, extra: pa.hostFlags}
	if pa.allNodes {
		f.allNodes = len(s.c.Members)
	}
	defer f.stop() // before tb.Close stops the cluster
	w, err := newWatcher()
	if err != nil {
		return nil, err
	}
	defer w.close()
	if err := sleep(ctx, pa.settle); err != nil {
		return rows, err
	}
	fmt.Fprintf(os.Stderr, "fleet: %s: baseline, no hosts…\n", name)
	base := row{}
	if base.idle, err = measureWindow(ctx, s, f, pa.idle, 0); err != nil {
		return rows, err
	}
	if base.loaded, err = measureWindow(ctx, s, f, pa.load, 100*time.Millisecond); err != nil {
		return rows, err
	}
	rows = append(rows, base)
	for _, n := range pa.ns {
		r, err := measureFleet(ctx, s, f, w, n, pa)
		if err != nil {
			return rows, fmt.Errorf("%d hosts: %w", n, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// measureFleet grows the fleet to n hosts and measures one row.
func measureFleet(ctx context.Context, s *store, f *fleet, w *watcher, n int, pa params) (r row, err error) {
	r.n = n
	fmt.Fprintf(os.Stderr, "fleet: %s: starting hosts up to %d…\n", s.name, n)
	t0 := time.Now()
	if err := f.grow(ctx, n, pa.batch, 2*time.Minute); err != nil {
		return r, err
	}
	r.startTook = time.Since(t0)
	var outs []string
	for _, h := range f.hosts {
		outs = append(outs, h.out)
	}
	if err := w.add(outs); err != nil {
		return r, err
	}
	if err := sleep(ctx, pa.settle); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "fleet: %s: %d hosts: idle…\n", s.name, n)
	if r.idle, err = measureWindow(ctx, s, f, pa.idle, 0); err != nil {
		return r, err
	}
	if r.conns, err = conns(s, f.pids()); err != nil {
		return r, err
	}
	if r.rssMed, r.rssMax, err = rss(f.pids()); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "fleet: %s: %d hosts: %d timed writes…\n", s.name, n, pa.writes)
	if r.lat, err = measureLatency(ctx, s, f, w, pa.writes, pa.gap, fmt.Sprintf("n%d", n)); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "fleet: %s: %d hosts: a write every 100 ms…\n", s.name, n)
	if r.loaded, err = measureWindow(ctx, s, f, pa.load, 100*time.Millisecond); err != nil {
		return r, err
	}
	return r, errors.Join(f.exited())
}
