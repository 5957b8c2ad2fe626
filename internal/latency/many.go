package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/runner"
	"github.com/reconf/reconf/resource"
)

// The -many scenario (issue 14): k resources, each on a prefix of its own under one Consul
// folder (F/pNN, rendering F/pNN/k), in watch mode; with noise > 0 the folder also holds that
// many unrelated keys (F/noise/…). It reports what the runner holds at the agent once every
// file rendered: the TCP connections from this process to the agent (the writing client's
// included) and the agent's blocking queries in flight (its consul.<node>.rpc.queries_blocking
// gauge, less what it was before the runner started); then the put→file latency of n isolated
// writes, each to the next resource in turn, and how many renders ran for resources whose
// keys were not written (a resource must be woken only by its own keys).

type manyResult struct {
	Folder  string
	Noise   int
	Conns   int // TCP connections from this process to the agent, 2 s after the last file rendered
	Queries int // the agent's blocking queries in flight then, less those before the runner
	// the same after settle: the agent holds a cancelled blocking query until its wait ends
	// (60 s), and idle connections of Get's pool close after 90 s
	SettledConns, SettledQueries int
	P50, P95                     time.Duration
	OtherRenders                 int // renders of resources whose keys were not written during the writes
}

func measureMany(tb *fakeTB, b backends.Backend, w consulWriter, k, n, noise int, gap, settle time.Duration, log *slog.Logger) manyResult {
	ctx := context.Background()
	folder := "/many"
	if noise > 0 {
		folder = "/busy"
		if err := w.load(ctx, dataset(folder+"/noise", noise, 100)); err != nil {
			tb.Fatalf("load %s/noise: %v", folder, err)
		}
	}
	res := manyResult{Folder: folder, Noise: noise}
	s := newSetup(tb, log)
	for i := range k {
		name := fmt.Sprintf("p%02d", i)
		p := folder + "/" + name
		if err := w.put(ctx, p+"/k", "init"); err != nil {
			tb.Fatalf("put: %v", err)
		}
		tmpl := fmt.Sprintf(`v={{getv %q ""}}`, p+"/k")
		toml := fmt.Sprintf("[template]\nsrc = %q\ndest = %q\nkeys = [%q]\n", name+".tmpl", filepath.Join(s.out, name), p)
		if err := os.WriteFile(filepath.Join(s.dir, "templates", name+".tmpl"), []byte(tmpl), 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, "conf.d", name+".toml"), []byte(toml), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	q0 := blockingQueries(tb, w.addr)
	fw := watchDir(tb, s.out)
	list, err := resource.Load(s.defs)
	if err != nil {
		tb.Fatal(err)
	}
	metrics := freeAddr(tb)
	r, err := runner.New(runner.Config{Resources: list, Backend: b, Defaults: s.defs, Watch: true, Log: log, MetricsAddr: metrics})
	if err != nil {
		tb.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("runner: %v", err)
		}
	}()
	for i := range k {
		if err := fw.until(filepath.Join(s.out, fmt.Sprintf("p%02d", i)), "v=init", 30*time.Second); err != nil {
			tb.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // let the watches settle into their steady state
	res.Conns = agentConns(tb, w.addr)
	res.Queries = blockingQueries(tb, w.addr) - q0
	time.Sleep(settle)
	res.SettledConns = agentConns(tb, w.addr)
	res.SettledQueries = blockingQueries(tb, w.addr) - q0
	before := renders(tb, metrics)
	var d []time.Duration
	for i := range n {
		time.Sleep(gap)
		fw.drain()
		name := fmt.Sprintf("p%02d", i%k)
		v := strconv.Itoa(i)
		t0 := time.Now()
		if err := w.put(ctx, folder+"/"+name+"/k", v); err != nil {
			tb.Fatalf("put %d: %v", i, err)
		}
		if err := fw.until(filepath.Join(s.out, name), "v="+v, 10*time.Second); err != nil {
			tb.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	time.Sleep(500 * time.Millisecond) // renders that a write might still cause elsewhere
	after := renders(tb, metrics)
	for i := range k {
		name := fmt.Sprintf("p%02d", i)
		written := n / k
		if i < n%k {
			written++
		}
		res.OtherRenders += max(0, after[name]-before[name]-written)
	}
	l := summarize(d)
	res.P50, res.P95 = l.p50, l.p95
	return res
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(tb *fakeTB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var renderLine = regexp.MustCompile(`^reconf_renders_total\{resource="([^"]+)",result="[^"]+"\} (\d+)`)

// renders scrapes the runner's reconf_renders_total and sums it per resource.
func renders(tb *fakeTB, addr string) map[string]int {
	resp, err := plain.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := renderLine.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[2])
			out[m[1]] += n
		}
	}
	return out
}

// plain asks without keeping connections, which agentConns would count.
var plain = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// blockingQueries reads the agent's consul.<node>.rpc.queries_blocking gauge. The agent's
// /v1/agent/metrics shows what was set in the latest finished 10 s interval (aligned on the
// clock), so it first runs a blocking query of its own that ends after 50 ms (the gauge is set
// as it starts and as it ends, to the count without it), then waits for that interval to end.
func blockingQueries(tb *fakeTB, addr string) int {
	resp, err := plain.Get("http://" + addr + "/v1/kv/reconf-latency-tick")
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	resp, err = plain.Get("http://" + addr + "/v1/kv/reconf-latency-tick?wait=50ms&index=" + resp.Header.Get("X-Consul-Index"))
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	time.Sleep(time.Until(time.Now().Truncate(10 * time.Second).Add(10*time.Second + 500*time.Millisecond)))
	resp, err = plain.Get("http://" + addr + "/v1/agent/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Gauges []struct {
			Name  string
			Value float64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		tb.Fatal(err)
	}
	for _, g := range m.Gauges {
		if strings.HasSuffix(g.Name, ".rpc.queries_blocking") {
			return int(g.Value)
		}
	}
	tb.Fatalf("no rpc.queries_blocking gauge in %s/v1/agent/metrics", addr)
	return 0
}

// agentConns counts the established TCP connections of this process to addr (host:port), by
// the socket inodes of /proc/self/fd found in /proc/net/tcp.
func agentConns(tb *fakeTB, addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	ours := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			ours[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(fs) < 10 || fs[3] != "01" || !ours[fs[9]] {
				continue
			}
			i := strings.LastIndexByte(fs[2], ':')
			if rp, err := strconv.ParseUint(fs[2][i+1:], 16, 32); err == nil && int(rp) == p {
				n++
			}
		}
	}
	return n
}

// runMany runs the -many scenario on a fresh Consul agent and prints the figures: one case
// per run, as the agent holds a cancelled blocking query until its wait ends, which the next
// case would count.
func runMany(pa params, log *slog.Logger) (err error) {
	tb := newTB("consul")
	defer tb.Close()
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			err = fmt.Errorf("%s", f.Msg)
		}
	}()
	b, w := startConsul(tb)
	warm(tb, b, w, pa.warmup)
	r := measureMany(tb, b, w.(consulWriter), pa.k, pa.n, pa.noise, pa.gap, pa.settle, log)
	fmt.Printf("consul, %d resources on %s/pNN (%d unrelated keys beside them): %d agent connections, %d blocking queries (after %s: %d, %d); put→file p50 %s p95 %s over %d writes; %d renders of resources not written to\n",
		pa.k, r.Folder, r.Noise, r.Conns, r.Queries, pa.settle, r.SettledConns, r.SettledQueries, ms(r.P50), ms(r.P95), pa.n, r.OtherRenders)
	return nil
}
