// Package discovery answers the template functions `service` and `services` on every backend.
//
// A backend with a native service catalog (Consul, through its health API) implements
// backends.Discoverer and is asked directly. Every other backend (etcd, ZooKeeper, Redis, file,
// env) is read through a key convention, the one `reconf register` writes:
//
//	<services-prefix>/<name>/<id> = {"id":"web-1","name":"web","address":"10.0.0.5","port":8080,
//	                                 "tags":["v2"],"meta":{"zone":"a"},"node":"host-1"}
//
// The services prefix defaults to backends.DefaultServicesPrefix ("/services"). One key holds one
// instance. Only "address" and "port" are required; a missing "id" or "name" is taken from the
// key (its base name and its parent folder). A value written by hand may also be a plain
// "host:port" ("10.0.0.5:8080"); its ID is the key's base name. An instance is healthy while
// its key exists: `reconf register` keeps it alive with an etcd lease, a ZooKeeper ephemeral
// node or a Redis key TTL, and removes it when the instance's health check fails.
//
// Instances are returned sorted by ID and may be filtered by tag. A value that is neither valid
// JSON of that shape nor "host:port" is skipped with a warning naming the key (once per distinct
// value): one bad key never fails the render. Datacenters exist only on Consul; asking for one
// on the key convention is an error.
//
// Watch tells the runner when an answer may have changed, once a template has asked for
// services at all: on Consul one blocking query per service the templates asked for (plus a
// slow poll as a safety net); elsewhere the backend's own watch on the services prefix, or
// polling where the backend cannot watch.
package discovery
