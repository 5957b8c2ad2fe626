package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/reconf/reconf/backends"
)

// ErrMalformed: a value under the services prefix is not an instance.
var ErrMalformed = errors.New("malformed service instance")

// Key returns where the key convention keeps instance id of service name under prefix.
func Key(prefix, name, id string) string {
	p := backends.CleanPrefix(prefix)
	if prefix == "" {
		p = backends.DefaultServicesPrefix
	}
	if p == "/" {
		return "/" + name + "/" + id
	}
	return p + "/" + name + "/" + id
}

// Encode returns the JSON value `reconf register` writes for s.
func Encode(s backends.Service) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", s.Name, s.ID, err)
	}
	return b, nil
}

// Decode reads one instance of service name stored under the key whose base name is id. The
// value is JSON ({"id","name","address","port","tags","meta","node"}) or a plain "host:port".
// The service name is always the key's folder; a missing JSON id is the key's base name.
func Decode(name, id, value string) (backends.Service, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return backends.Service{}, fmt.Errorf("%w: empty value", ErrMalformed)
	}
	if v[0] == '{' {
		var s backends.Service
		dec := json.NewDecoder(bytes.NewReader([]byte(v)))
		if err := dec.Decode(&s); err != nil {
			return backends.Service{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if s.ID == "" {
			s.ID = id
		}
		s.Name = name
		if s.Address == "" {
			return backends.Service{}, fmt.Errorf("%w: no address", ErrMalformed)
		}
		if s.Port < 1 || s.Port > 65535 {
			return backends.Service{}, fmt.Errorf("%w: port %d out of range", ErrMalformed, s.Port)
		}
		return s, nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return backends.Service{}, fmt.Errorf("%w: want JSON or host:port: %w", ErrMalformed, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || host == "" {
		return backends.Service{}, fmt.Errorf("%w: want JSON or host:port, got %q", ErrMalformed, v)
	}
	return backends.Service{ID: id, Name: name, Address: host, Port: p}, nil
}
