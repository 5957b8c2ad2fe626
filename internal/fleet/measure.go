package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/reconf/reconf/internal/testservers"
)

// window is what the store and the hosts did over one measuring window.
type window struct {
	took              time.Duration
	storeCPU, hostCPU float64 // % of one core: the members together, the hosts together
	reads             float64 // etcd: range requests; Consul: read queries started (rpc.query)
	// etcd: watchers and watch streams over the members; Consul: blocking queries in flight
	// over the servers (streams unused)
	watchers, streams float64
	writes            int
	// etcd: watch stream messages the members received (watch creations, progress requests)
	// and sent (events, progress notifications), per second
	watchIn, watchOut float64
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// measureWindow measures the store and the hosts over d, writing a key every writeEvery when it
// is not zero (each write changes one resource on every host). On Consul the window starts on
// one of its 10 s metric intervals and lasts whole intervals.
func measureWindow(ctx context.Context, s *store, f *fleet, d, writeEvery time.Duration) (w window, err error) {
	intervals := int((d + 10*time.Second - 1) / (10 * time.Second))
	if s.aligned {
		// a little after the boundary: the agent has closed the interval by then
		if err := sleep(ctx, time.Until(time.Now().Truncate(10*time.Second).Add(10*time.Second+300*time.Millisecond))); err != nil {
			return w, err
		}
	}
	var reads0, in0, out0 float64
	if !s.aligned {
		if reads0, in0, out0, err = s.etcdCounters(ctx); err != nil {
			return w, err
		}
	}
	hostPids := f.pids()
	t0 := time.Now()
	sc0, err1 := sumTicks(s.pids())
	hc0, err2 := sumTicks(hostPids)
	if err1 != nil || err2 != nil {
		return w, fmt.Errorf("cpu: %v %v", err1, err2)
	}
	wctx, stop := context.WithCancel(ctx)
	writes := make(chan int, 1)
	go func() { writes <- writeLoop(wctx, s, f.k, writeEvery) }()
	defer func() {
		stop()
		w.writes = <-writes
	}()
	if s.aligned {
		for j := range intervals {
			ticked := j == intervals-1 && writeEvery == 0
			if ticked {
				if err := s.tick(ctx); err != nil {
					return w, err
				}
			}
			if err := sleep(ctx, time.Until(t0.Add(time.Duration(j+1)*10*time.Second))); err != nil {
				return w, err
			}
			q, b, err := s.consulInterval(ctx)
			if err != nil {
				return w, err
			}
			if ticked {
				q -= float64(tickReads * len(s.c.Members))
			}
			w.reads += q
			w.watchers, w.streams = b, -1
		}
	} else if err := sleep(ctx, d); err != nil {
		return w, err
	}
	w.took = time.Since(t0)
	sc1, err1 := sumTicks(s.pids())
	hc1, err2 := sumTicks(hostPids)
	if err1 != nil || err2 != nil {
		return w, fmt.Errorf("cpu: %v %v", err1, err2)
	}
	pct := func(ticks int64) float64 {
		return 100 * float64(ticks) / clockTick / w.took.Seconds()
	}
	w.storeCPU, w.hostCPU = pct(sc1-sc0), pct(hc1-hc0)
	if !s.aligned {
		reads1, in1, out1, err := s.etcdCounters(ctx)
		if err != nil {
			return w, err
		}
		w.reads = reads1 - reads0
		w.watchIn, w.watchOut = (in1-in0)/w.took.Seconds(), (out1-out0)/w.took.Seconds()
		if w.watchers, err = s.etcdSum(ctx, "etcd_debugging_mvcc_watcher_total"); err != nil {
			return w, err
		}
		if w.streams, err = s.etcdSum(ctx, "etcd_debugging_mvcc_watch_stream_total"); err != nil {
			return w, err
		}
	}
	return w, nil
}

// etcdCounters reads the members' range requests and watch stream messages in and out.
func (s *store) etcdCounters(ctx context.Context) (reads, in, out float64, err error) {
	if reads, err = s.etcdSum(ctx, "etcd_debugging_mvcc_range_total"); err != nil {
		return
	}
	if in, err = s.etcdLabelled(ctx, "grpc_server_msg_received_total", `grpc_method="Watch"`); err != nil {
		return
	}
	out, err = s.etcdLabelled(ctx, "grpc_server_msg_sent_total", `grpc_method="Watch"`)
	return
}

// writeLoop writes /fleet/pNN/k, NN in turn, every `every` until ctx ends, and returns how
// many writes it made (none when every is 0).
func writeLoop(ctx context.Context, s *store, k int, every time.Duration) int {
	if every == 0 {
		return 0
	}
	t := time.NewTicker(every)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
		if err := s.put(ctx, "/fleet/"+resName(n%k)+"/k", fmt.Sprintf("load-%d", n)); err == nil {
			n++
		}
	}
}

// latency is write→file over the hosts for several writes.
type latency struct {
	first, p50, p99, last time.Duration // medians over the writes
	worst                 time.Duration // the latest last host of any write
}

// measureLatency makes `writes` isolated writes, gap apart, each to the next resource, and
// times each from issuing the put until every host has the new file.
func measureLatency(ctx context.Context, s *store, f *fleet, w *watcher, writes int, gap time.Duration, tag string) (latency, error) {
	var firsts, p50s, p99s, lasts []time.Duration
	for i := range writes {
		if err := sleep(ctx, gap); err != nil {
			return latency{}, err
		}
		w.drain()
		name := resName(i % f.k)
		val := fmt.Sprintf("%s-w%d", tag, i)
		errc := make(chan error, 1)
		t0 := time.Now()
		go func() { errc <- s.put(ctx, "/fleet/"+name+"/k", val) }()
		sp, err := w.await(t0, name, "v="+val+"\n", 30*time.Second)
		if perr := <-errc; perr != nil {
			return latency{}, perr
		}
		if err != nil {
			return latency{}, fmt.Errorf("write %d: %w", i, err)
		}
		firsts, p50s, p99s, lasts = append(firsts, sp.at(0)), append(p50s, sp.at(0.5)), append(p99s, sp.at(0.99)), append(lasts, sp.at(1))
	}
	med := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return spread(s).at(0.5)
	}
	return latency{first: med(firsts), p50: med(p50s), p99: med(p99s), last: med(lasts), worst: slices.Max(lasts)}, nil
}

// rss returns the median and largest RSS of the hosts, in MiB.
func rss(pids []int) (med, most float64, err error) {
	var v []float64
	for _, p := range pids {
		k, err := rssKiB(p)
		if err != nil {
			return 0, 0, err
		}
		v = append(v, float64(k)/1024)
	}
	if len(v) == 0 {
		return 0, 0, nil
	}
	slices.Sort(v)
	return v[len(v)/2], v[len(v)-1], nil
}

// conns counts the hosts' established TCP connections to the members' client ports.
func conns(s *store, pids []int) (int, error) {
	role := "client"
	if s.name == "consul" {
		role = "http"
	}
	n := 0
	for _, p := range pids {
		peers, err := testservers.TCPPeers(p)
		if err != nil {
			return 0, err
		}
		for _, m := range s.c.Members {
			n += peers[m.Ports[role]]
		}
	}
	return n, nil
}
