// Command latency measures reconf end to end against each real backend (issue 3's targets):
//
//	go run ./internal/latency [-quick] [-n 200] [-burst 1000] [-resources 50] [-runs 5]
//	                          [-noise 50000] [-backends file,etcd,…] [-bin path|none] [-onetime-only] [-v]
//	go run ./internal/latency -many [-resources 50] [-n 200] [-noise 0|50000] [-settle 95s]
//
// For every backend it starts the real server (through internal/testservers, driven by a
// small stand-in for testing.TB) in a child process of its own and reports:
//
//   - put→file latency: the runner in watch mode, one resource (wait 0), one key written N
//     times in turn; the time from issuing the write (its own round trip, shown as "put p50",
//     included) to the destination holding the new value (fsnotify on the folder, re-read on
//     each event); p50/p95/p99/max. Measured again
//     after -noise unrelated keys were loaded (/noise/…).
//   - burst: 1,000 writes as fast as the client goes to a resource with wait = "50ms:500ms"
//     and a reload_cmd; how many reloads ran and how long until the file held the last value.
//   - start: 50 resources over 5 prefixes; the time from Run to every file rendered, and the
//     process's RSS afterwards (the harness process: runner plus the writing client).
//   - -onetime: the real reconf binary (go build ./cmd/reconf, or -bin) run as a subprocess
//     over 100,000 keys (/app/sNNNN/kNNN, loaded with the store's own batched writes) rendered
//     by one template with `gets` and by one with `ls`+`getv`, and over 50 resources × 1,000
//     keys; median wall time of -runs runs from exec to exit, its CPU time, and peak RSS
//     (the child's VmHWM, polled: wait4's Maxrss would report the harness's own).
//
// -many (Consul only, many.go) instead runs issue 14's scenario: -resources resources, each on
// a prefix of its own under one folder (beside -noise unrelated keys in that folder, if not 0),
// and reports the agent connections and blocking queries they hold, change→file latency and
// renders of resources whose keys were not written.
//
// It ends with a table of issue 3's targets: target, measured, PASS or MISS. A MISS is a
// figure, not a failure; the exit status is 1 only when a measurement could not be made.
// -quick (or RECONF_BENCH_QUICK=1) takes fewer writes and runs (about five minutes for all
// backends). Numbers depend on the machine; they belong in reports and benchmarks, never in
// tests. The benchmarks in this package (BenchmarkOnetime, BenchmarkGet100k) run the same
// scenarios in process, for -cpuprofile and -memprofile.
package main
