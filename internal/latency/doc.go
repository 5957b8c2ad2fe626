// Command latency measures reconf's runner end to end against each real backend:
//
//	go run ./internal/latency [-n 200] [-burst 1000] [-resources 50] [-backends file,etcd,…]
//
// For every backend it starts the real server (through internal/testservers, driven by a
// small stand-in for testing.TB), runs the runner in watch mode and reports:
//
//   - put→file latency: one resource (wait 0), one key written N times in turn; the time from
//     the write returning to the destination holding the new value (fsnotify on the folder,
//     re-read on each event); p50/p95/p99/max.
//   - burst: 1,000 writes as fast as the client goes to a resource with wait = "50ms:500ms"
//     and a reload_cmd; how many reloads ran and how long until the file held the last value.
//   - start: 50 resources over 5 prefixes; the time from Run to every file rendered, and the
//     process's RSS afterwards (the harness process: runner plus the writing client).
//
// Numbers depend on the machine; they belong in reports and benchmarks, not in tests.
package main
