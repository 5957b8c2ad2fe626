package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// printTable prints one store's rows (the baseline first) and its targets.
func printTable(name string, rows []row, pa params, took time.Duration) {
	if len(rows) == 0 {
		return
	}
	given := "hosts spread over them"
	if pa.allNodes {
		given = "every host given all of them"
	}
	if len(pa.hostFlags) > 0 {
		given += ", hosts run with " + strings.Join(pa.hostFlags, " ")
	}
	fmt.Printf("\n%s: 3 members, %s, %d resources per host; %s in all\n", name, given, pa.k, took.Round(time.Second))
	watch := "watchers/streams"
	if name == "consul" {
		watch = "blocking queries"
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "hosts\tfirst\tp50\tp99\tlast\tworst last\t%s\tconns\tidle CPU\tidle reads\tidle watch msgs in/out per s\tload CPU\tload reads\thosts idle CPU\thosts load CPU\tRSS p50\tRSS max\tstart\t\n", watch)
	for _, r := range rows {
		wv := fmt.Sprintf("%.0f/%.0f", r.idle.watchers, r.idle.streams)
		if name == "consul" {
			wv = fmt.Sprintf("%.0f", r.idle.watchers)
		}
		lat := "-\t-\t-\t-\t-"
		if r.n > 0 {
			lat = fmt.Sprintf("%s\t%s\t%s\t%s\t%s", ms(r.lat.first), ms(r.lat.p50), ms(r.lat.p99), ms(r.lat.last), ms(r.lat.worst))
		}
		msgs := "-"
		if name == "etcd" {
			msgs = fmt.Sprintf("%.0f/%.0f", r.idle.watchIn, r.idle.watchOut)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%.2f%%\t%.0f\t%s\t%.1f%%\t%.0f\t%.2f%%\t%.1f%%\t%.1f\t%.1f\t%s\t\n", r.n, lat, wv, r.conns,
			r.idle.storeCPU, r.idle.reads, msgs, r.loaded.storeCPU, r.loaded.reads, r.idle.hostCPU, r.loaded.hostCPU, r.rssMed, r.rssMax, r.startTook.Round(100*time.Millisecond))
	}
	_ = tw.Flush()
	reads := "range requests (etcd_debugging_mvcc_range_total)"
	if name == "consul" {
		reads = "read queries the servers started (consul.rpc.query), less the 2 per server of our own that make the servers report consul.rpc.queries_blocking in the idle window's last 10 s interval"
	}
	fmt.Printf("first/p50/p99/last: from issuing one write until the first, median, 99th-percentile and last host has the new file, median over %d writes (worst last: the slowest of them);\n"+
		"idle: %s with no change, load: %s with a write every 100 ms (each changes one resource on every host); CPU in %% of one core, the 3 members together (hosts: all hosts together);\n"+
		"reads: %s over the window; conns: the hosts' TCP connections to the members; watch msgs: gRPC Watch stream messages the members received (progress requests) and sent; RSS in MiB after the idle window; start: starting the hosts added, %d at a time, until each rendered.\n",
		pa.writes, pa.idle, pa.load, reads, pa.batch)
	base, last := rows[0], rows[len(rows)-1]
	if last.n == 0 {
		return
	}
	judge := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Printf("targets with %d hosts: last host within 100 ms: %s (%s, worst %s); zero polling reads while idle: %s (%.0f, %.0f with no hosts); idle CPU ≤ no hosts + 1 %% of a core: %s (%.2f%% vs %.2f%%)\n",
		last.n, judge(last.lat.last <= 100*time.Millisecond), ms(last.lat.last), ms(last.lat.worst),
		judge(last.idle.reads <= base.idle.reads), last.idle.reads, base.idle.reads,
		judge(last.idle.storeCPU <= base.idle.storeCPU+1), last.idle.storeCPU, base.idle.storeCPU)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
