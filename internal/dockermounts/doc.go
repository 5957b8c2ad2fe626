// Package dockermounts tells which files running Docker containers bind-mount, so that reconf
// can write such a destination in place (a container keeps seeing the inode it was started
// with; a rename gives the host path a new one). It implements resource.MountFinder.
//
// The answer comes from one ContainerList call (the engine's API, version negotiated), cached:
// while an event stream from the engine is open the cache lasts until a container starts or
// dies (and at most MaxAge); without one, for TTL. An engine that cannot be reached makes every
// answer "not mounted" (the destination is renamed over, as without Docker) and is logged once,
// not on every write.
package dockermounts
