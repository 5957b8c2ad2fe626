// Package registrator tests `reconf registrator` end to end: the real reconf binary against a
// private Docker engine (package internal/testservers starts dockerd with its own roots,
// socket and bridge) and real Consul, etcd, ZooKeeper and Redis. Containers run a tiny static
// Go HTTP server imported offline as an image, publish their ports on 127.0.0.1, and carry
// SERVICE_* labels and environment; the tests assert what lands in the stores for every rule
// of gliderlabs/registrator that reconf reproduces, for the container lifecycle, and for the
// engine and the store going away and coming back.
//
// The package has no non-test code.
package registrator
