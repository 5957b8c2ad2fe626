package registrator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/discovery"
)

// errGone: the store lost what it held for us (an expired lease, a new ZooKeeper session, an
// expired Redis key); everything is registered again.
var errGone = errors.New("registrations lost by the store")

// Registry is one store's way of publishing services. Methods are called from one goroutine.
type Registry interface {
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// Register creates or replaces s (with the TTL, where the store has one).
	Register(ctx context.Context, s *Service) error
	// Deregister removes s; an s that is not there is not an error.
	Deregister(ctx context.Context, s *Service) error
	// Refresh pushes back the TTL of every service in ss (-ttl-refresh). An error wrapping
	// errGone says the store dropped them: the caller registers them again.
	Refresh(ctx context.Context, ss []*Service) error
	// Abandon leaves s in the store without keeping it alive any longer: it expires after
	// the TTL, if there is one (a container kept by -deregister on-success).
	Abandon(ctx context.Context, s *Service) error
	// Services lists the instances the store holds (ID and Name at least), for -cleanup and
	// to find what a store restart or an expiry lost.
	Services(ctx context.Context) ([]backends.Service, error)
	Close() error
}

// registryConfig is what a Registry needs from the command line.
type registryConfig struct {
	URI      *url.URL
	TTL      time.Duration // 0: keys do not expire (ZooKeeper: the session timeout, 10s)
	Hostname string
	Timeout  time.Duration // per store request
	// Value is "ip:port" or "json" (see Config.KVValue; "" picks the store's default).
	Value string
}

// prefix returns the key prefix a KV URI names ("/" when it has no path).
func (c registryConfig) prefix() string {
	p := path.Clean("/" + strings.Trim(c.URI.Path, "/"))
	return p
}

// key is where the key convention keeps s: <prefix>/<name>/<id>.
func (c registryConfig) key(s *Service) string {
	return discovery.Key(c.prefix(), s.Name, s.ID)
}

// parseKey splits a key under prefix into the service name and ID; ok is false for anything
// that is not exactly <prefix>/<name>/<id>.
func parseKey(prefix, key string) (name, id string, ok bool) {
	rest := key
	if prefix != "/" {
		var found bool
		if rest, found = strings.CutPrefix(key, prefix); !found {
			return "", "", false
		}
	}
	if rest, ok = strings.CutPrefix(rest, "/"); !ok {
		return "", "", false
	}
	name, id, ok = strings.Cut(rest, "/")
	if !ok || name == "" || id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	return name, id, true
}

// encode is the value of s's key: registrator's "ip:port", or the JSON of reconf register
// (address, port, tags, meta), as c.Value says; "" is "ip:port" on etcd, as registrator
// writes it there, and JSON on the other stores.
func (c registryConfig) encode(s *Service) ([]byte, error) {
	v := c.Value
	if v == "" {
		v = "json"
		if c.URI != nil && c.URI.Scheme == "etcd" {
			v = "ip:port"
		}
	}
	if v == "ip:port" {
		return []byte(net.JoinHostPort(s.Address, strconv.Itoa(s.Port))), nil
	}
	return discovery.Encode(s.Service)
}

// newRegistry opens the store a URI names.
func newRegistry(c registryConfig) (Registry, error) {
	switch c.URI.Scheme {
	case "consul":
		return newConsul(c)
	case "etcd":
		return newEtcd(c)
	case "zookeeper":
		return newZK(c)
	case "redis":
		return newRedis(c)
	}
	return nil, fmt.Errorf("%w: unrecognized adapter %q (known: consul, etcd, zookeeper, redis)", backends.ErrConfig, c.URI.Scheme)
}
