// Package cluster tests reconf against clustered stores on one machine: a 3-member etcd
// cluster, a 3-server ZooKeeper ensemble and 3 Consul servers with a client agent, all started
// by internal/testservers on loopback ports.
//
// The real reconf binary (built once by TestMain) watches 20 resources while a writer keeps
// updating their keys with a version counter. The tests kill (SIGKILL) the member reconf is
// connected to, then the leader, freeze one member (SIGSTOP, then SIGCONT), start reconf with a
// member down, and take all members down and back. They check that every file ends equal to the
// store's final state, that no file ever went back to an older version after a newer one was on
// disk, and report how long after each event a new write reached the files. BenchmarkFailover
// prints those times as benchmark metrics.
//
// The package has no non-test code.
package cluster
