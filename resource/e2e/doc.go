// Package e2e holds the end-to-end tests of package resource against real backends: a
// resource synced from a real etcd, and what a backend failure leaves on disk. It has no
// non-test code; it is a package of its own so that a backend under construction cannot stop
// package resource's own tests from building.
package e2e
