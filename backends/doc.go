// Package backends defines what a key-value store driver is to reconf: the Backend interface
// that reads snapshots, the optional Watcher and Discoverer capabilities, the Options every
// driver is built from, and the registry through which drivers register themselves by name.
//
// A driver lives in its own package under backends/, registers itself in init() with Register,
// and is linked in by a blank import in backends/all. See backends/README.md for the checklist.
package backends
