// Package integration holds reconf's end-to-end tests: the real `reconf -watch` and
// `reconf register` binaries, real etcd and Consul (package internal/testservers), and real
// haproxy and nginx on loopback ports, with tiny HTTP backends joining and leaving while a
// client sends a steady stream of requests through the proxy. The tests measure how fast an
// instance that joins gets traffic, how fast one that dies stops getting it, and count the
// requests that fail (the target is zero), and check reload hygiene: old proxy generations
// drain, and a reload that fails is rolled back while the proxy keeps serving.
//
// The package has no non-test code.
package integration
