// Package testservers starts the real servers (etcd, ZooKeeper, Redis, Consul, haproxy, nginx)
// that reconf's tests run against, on free loopback ports with a data folder per test, and
// stops them by pid when the test ends. A missing server binary fails the test: it is never
// skipped.
package testservers

import "testing"

// Server is one running server process.
type Server struct {
	Addr string // host:port clients dial
	// implementation fields
}

// Stop stops the server (SIGTERM, then SIGKILL after a deadline) and waits for it to exit.
func (s *Server) Stop(t testing.TB) { panic("not implemented") }

// Start starts a stopped server again on the same address and data folder, waiting until it
// answers.
func (s *Server) Start(t testing.TB) { panic("not implemented") }

// Pause sends SIGSTOP (a frozen server); Resume sends SIGCONT.
func (s *Server) Pause(t testing.TB)  { panic("not implemented") }
func (s *Server) Resume(t testing.TB) { panic("not implemented") }

// Etcd starts etcd and waits until it serves. Cleanup stops it.
func Etcd(t testing.TB) *Server { panic("not implemented") }

// ZooKeeper starts ZooKeeper and waits until it answers "ruok".
func ZooKeeper(t testing.TB) *Server { panic("not implemented") }

// Redis starts redis-server with keyspace notifications on (KEA) and waits for PONG.
func Redis(t testing.TB) *Server { panic("not implemented") }

// Consul starts a dev agent (binary from scripts/build-consul.sh, or $RECONF_CONSUL) and waits
// until it has a leader.
func Consul(t testing.TB) *Server { panic("not implemented") }
