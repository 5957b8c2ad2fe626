package backends

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Factory builds a backend from options. It validates the options and may connect.
type Factory func(Options) (Backend, error)

var (
	regMu    sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a backend available by name. It panics if the name is taken or f is nil;
// drivers call it from init().
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if f == nil {
		panic("backends: Register factory is nil for " + name)
	}
	if _, dup := registry[name]; dup {
		panic("backends: Register called twice for " + name)
	}
	registry[name] = f
}

// Names returns the registered backend names, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Known reports whether name is a registered backend.
func Known(name string) bool {
	regMu.RLock()
	defer regMu.RUnlock()
	_, ok := registry[name]
	return ok
}

// New builds the backend registered as name.
func New(name string, o Options) (Backend, error) {
	regMu.RLock()
	f, ok := registry[name]
	regMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownBackend, name, strings.Join(Names(), ", "))
	}
	b, err := f(o)
	if err != nil {
		if msg := err.Error(); strings.HasPrefix(msg, name+":") || strings.HasPrefix(msg, name+" ") {
			return nil, err // the driver named itself already
		}
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	return b, nil
}
