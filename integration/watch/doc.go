// Package watch holds reconf's real-server tests of watch mode and of backend equivalence.
//
// Each test builds the real reconf binary once (TestMain), runs it as a subprocess
// (`reconf -watch`, or `-onetime`) against real etcd, Consul, ZooKeeper and Redis started by
// package internal/testservers, writes keys with each store's own client library, and polls the
// rendered files on disk with deadlines. The tests cover: byte-identical output from every
// backend and the file backend for the same data; a put or a delete reaching the destination;
// the store stopping, starting late, or freezing (SIGSTOP) while reconf keeps the last good
// file; bursts of writes collapsed by `wait`; fifty resources sharing one connection per store;
// SIGHUP reloads (including a broken template); SIGTERM during a hung reload_cmd; and the
// /ready and /metrics endpoints.
//
// The package has no non-test code.
package watch
