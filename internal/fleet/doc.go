// Command fleet is the fleet benchmark of issue 14 (run by make bench, not a test): N reconf
// processes ("hosts"), each watching the same -resources resources on prefixes /fleet/pNN,
// against a 3-member etcd cluster and a 3-server Consul cluster started on this machine, the
// hosts spread over the members with -node (host i talks to member i mod 3; on Consul to that
// server's own HTTP API, not to the client agent). For each store and each N it prints: the time
// from issuing one write until the first host, the median host, the 99th-percentile host and
// the last host has the new file (inotify on every host's output folder); the store's watchers
// (etcd) or blocking queries in flight (Consul); its CPU and its read requests while idle and
// under a write every 100 ms; each host's RSS and the hosts' CPU. The same store with no hosts
// is the baseline. Every process it starts is stopped by pid at the end, on failure and on
// Ctrl-C.
//
//	go run ./internal/fleet [-n 50,100,200] [-stores etcd,consul] [-resources 50] [-writes 10] [-idle 20s] [-load 10s]
package main
