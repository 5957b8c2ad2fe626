// Package register implements `reconf register` and `reconf deregister`: it registers one
// instance of a service in the store the templates read (etcd, ZooKeeper, Redis or Consul),
// keeps it alive while its health check passes, and removes it when the check fails
// -failures times in a row or when reconf is told to stop (SIGTERM, SIGINT).
//
// On etcd, ZooKeeper and Redis the instance is written by the key convention of package
// discovery (a JSON value under <services-prefix>/<name>/<id>) and kept alive by an etcd lease,
// a ZooKeeper ephemeral node or a Redis key TTL; on Consul it is an agent service with a TTL
// check that reconf passes or fails. Whichever store it is, if reconf dies without deregistering
// the instance disappears by itself once the TTL runs out. (ZooKeeper bounds a session timeout,
// and so the TTL, to 2–20 times its tickTime: 4s–40s with the usual tickTime of 2s. Consul
// reaps a service whose check stays critical after -deregister-after, at least one minute;
// until then it is only hidden from the health API.)
//
// A keep-alive the store does not answer is retried each interval while the TTL runs; a lost
// lease, session, key or check is registered again at once.
package register
