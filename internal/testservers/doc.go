// Package testservers starts the real servers (etcd, ZooKeeper, Redis, Consul, Vault) that
// reconf's tests run against, on free loopback ports with a data folder per test, and stops them
// by pid when the test ends. A missing server binary fails the test: it is never skipped.
//
// Each server runs in its own process group with its output in Server.LogPath (printed when the
// test fails). Readiness is polled with a deadline. Stop and Start keep the address and data
// folder (Consul's -dev agent and dev Vault keep their data in memory, so they restart empty);
// Pause and Resume freeze and thaw the process with SIGSTOP and SIGCONT.
package testservers
