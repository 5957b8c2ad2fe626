// Package backendtest is the conformance suite every backend passes against its real server.
// A backend's test file starts the server, fills in a Harness and calls Run.
package backendtest

import (
	"testing"

	"github.com/reconf/reconf/backends"
)

// Harness adapts one backend and its real server to the suite. Every case writes under a
// prefix of its own, so one server serves the whole suite.
type Harness struct {
	// New returns a fresh client of the backend under test; the suite closes it.
	New func(t *testing.T) backends.Backend
	// Put writes key (an absolute '/'-separated path) = value through the store's own client.
	Put func(t *testing.T, key, value string)
	// Delete removes key through the store's own client.
	Delete func(t *testing.T, key string)
	// Stop and Start stop the real server and start it again on the same address and data.
	// Nil means the backend has no server (file, env); the recovery case is then not run.
	Stop, Start func(t *testing.T)
	// Unsupported lists case names the backend cannot express, each with the reason
	// (e.g. env cannot hold keys with spaces). Keep it short: every entry is a visible gap.
	Unsupported map[string]string
}

// Run runs every conformance case against h.
func Run(t *testing.T, h Harness) { panic("not implemented") }
