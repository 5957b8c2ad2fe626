// Package docker tests reconf against a real, private Docker engine
// (internal/testservers.DockerEngine): a destination bind-mounted into a container is written in
// place, so the container sees every render.
package docker
