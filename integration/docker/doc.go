// Package docker tests reconf against a real, private Docker engine
// (internal/testservers.DockerEngine): a destination bind-mounted into a container is written in
// place, so the container sees every render; and examples/docker end to end (registrator, haproxy
// in a container with its config bind-mounted, reconf -watch reloading it with docker kill -s HUP).
package docker
