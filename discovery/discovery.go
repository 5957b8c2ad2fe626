package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/template"
)

// Sentinel errors; classify with errors.Is.
var (
	// ErrName: the service name is empty or holds a '/'.
	ErrName = errors.New("invalid service name")
	// ErrDatacenter: a datacenter was asked for on a backend without datacenters.
	ErrDatacenter = errors.New("datacenters are supported only by backends with a service catalog (consul)")
)

// DefaultPollInterval is how often Watch re-reads services on a backend that cannot watch.
const DefaultPollInterval = 500 * time.Millisecond

// Config says where the key convention lives and how to report.
type Config struct {
	// Prefix is the services prefix (default backends.DefaultServicesPrefix).
	Prefix string
	// PollInterval is Watch's period on a backend that cannot watch (default DefaultPollInterval).
	PollInterval time.Duration
	// Log receives warnings about malformed instances (default slog.Default()).
	Log *slog.Logger
}

// ServiceWatcher may be implemented by a backends.Discoverer that can tell when its catalog may
// have changed (e.g. Consul blocking queries). It follows the backends.Watcher contract: it
// sends on changed without blocking and returns only when ctx is done or on an error that
// retrying cannot fix. Without it, Watch polls a Discoverer.
type ServiceWatcher interface {
	WatchServices(ctx context.Context, changed chan<- struct{}) error
}

// Discovery implements template.Services for one backend. It is safe for concurrent use.
type Discovery struct {
	b      backends.Backend
	prefix string
	poll   time.Duration
	log    *slog.Logger

	mu     sync.Mutex
	warned map[string]string            // key → the malformed value last warned about
	seen   map[query][]backends.Service // a Discoverer's last answers, so Watch can poll them
	names  map[string][]string          // a Discoverer's last ServiceNames answer (nil: never asked)
	used   atomic.Bool                  // a template asked for services at least once
	asked  chan struct{}                // signalled when a Discoverer is asked something new
}

type query struct{ name, tag, dc string }

var _ template.Services = (*Discovery)(nil)

// New returns the discovery for b.
func New(b backends.Backend, cfg Config) *Discovery {
	d := &Discovery{
		b:      b,
		prefix: backends.CleanPrefix(cfg.Prefix),
		poll:   cfg.PollInterval,
		log:    cfg.Log,
		warned: map[string]string{},
		seen:   map[query][]backends.Service{},
		asked:  make(chan struct{}, 1),
	}
	if cfg.Prefix == "" {
		d.prefix = backends.DefaultServicesPrefix
	}
	if d.poll <= 0 {
		d.poll = DefaultPollInterval
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	return d
}

// Prefix returns the services prefix the key convention is read from.
func (d *Discovery) Prefix() string { return d.prefix }

// Service returns the healthy instances of name, only those carrying tag when tag is not empty,
// sorted by ID.
func (d *Discovery) Service(ctx context.Context, name, tag, dc string) ([]backends.Service, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("service %q: %w", name, ErrName)
	}
	d.used.Store(true)
	if disc, ok := d.b.(backends.Discoverer); ok {
		svcs, err := disc.Services(ctx, name, tag, dc)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", name, err)
		}
		sortByID(svcs)
		q := query{name, tag, dc}
		d.mu.Lock()
		_, known := d.seen[q]
		d.seen[q] = svcs
		d.mu.Unlock()
		if !known {
			backends.Notify(d.asked) // Watch starts watching it at once
		}
		return svcs, nil
	}
	if dc != "" {
		return nil, fmt.Errorf("service %q in datacenter %q: %w", name, dc, ErrDatacenter)
	}
	dir := d.prefix + "/" + name
	if d.prefix == "/" {
		dir = "/" + name
	}
	kv, err := d.b.Get(ctx, []string{dir})
	if err != nil {
		return nil, fmt.Errorf("service %q: reading %s: %w", name, dir, err)
	}
	byName := d.parse(kv)
	svcs := byName[name]
	if tag != "" {
		svcs = withTag(svcs, tag)
	}
	if svcs == nil {
		svcs = []backends.Service{}
	}
	return svcs, nil
}

// ServiceNames returns every service with at least one healthy instance, each with the sorted
// union of its instances' tags.
func (d *Discovery) ServiceNames(ctx context.Context) (map[string][]string, error) {
	d.used.Store(true)
	if disc, ok := d.b.(backends.Discoverer); ok {
		names, err := disc.ServiceNames(ctx)
		if err != nil {
			return nil, fmt.Errorf("services: %w", err)
		}
		if names == nil {
			names = map[string][]string{}
		}
		d.mu.Lock()
		d.names = names
		d.mu.Unlock()
		return names, nil
	}
	kv, err := d.b.Get(ctx, []string{d.prefix})
	if err != nil {
		return nil, fmt.Errorf("services: reading %s: %w", d.prefix, err)
	}
	out := map[string][]string{}
	for name, svcs := range d.parse(kv) {
		seen := map[string]bool{}
		tags := []string{}
		for _, s := range svcs {
			for _, t := range s.Tags {
				if !seen[t] {
					seen[t] = true
					tags = append(tags, t)
				}
			}
		}
		sort.Strings(tags)
		out[name] = tags
	}
	return out, nil
}

// parse turns a snapshot under the services prefix into instances by service name, each list
// sorted by ID. Keys that are not exactly <prefix>/<name>/<id> are ignored; malformed values
// are skipped with a warning.
func (d *Discovery) parse(kv map[string]string) map[string][]backends.Service {
	out := map[string][]backends.Service{}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		rel := strings.TrimPrefix(key, d.prefix)
		if d.prefix == "/" {
			rel = key
		}
		parts := strings.Split(strings.TrimPrefix(rel, "/"), "/")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" || !backends.UnderPrefix(key, d.prefix) {
			continue // the prefix or a service folder itself (ZooKeeper parents), or deeper keys
		}
		s, err := Decode(parts[0], parts[1], kv[key])
		if err != nil {
			d.warn(key, kv[key], err)
			continue
		}
		out[parts[0]] = append(out[parts[0]], s)
	}
	for _, svcs := range out {
		sortByID(svcs)
	}
	return out
}

// warn logs a malformed instance once per distinct value of its key.
func (d *Discovery) warn(key, value string, err error) {
	d.mu.Lock()
	last, seen := d.warned[key]
	if !seen || last != value {
		if len(d.warned) > 10000 {
			clear(d.warned)
		}
		d.warned[key] = value
	}
	d.mu.Unlock()
	if !seen || last != value {
		d.log.Warn("skipping malformed service instance", "key", key, "err", err)
	}
}

func withTag(svcs []backends.Service, tag string) []backends.Service {
	var out []backends.Service
	for _, s := range svcs {
		for _, t := range s.Tags {
			if t == tag {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func sortByID(svcs []backends.Service) {
	sort.SliceStable(svcs, func(i, j int) bool { return svcs[i].ID < svcs[j].ID })
}

// Want tells Watch that a template read the instances of name (with tag, in datacenter dc)
// by other means — consul-template's own health query on Consul — so that a change to them
// signals, without asking the store now. On a backend without a catalog the services prefix
// is watched as a whole, and Want only records that services are in use.
func (d *Discovery) Want(name, tag, dc string) {
	d.used.Store(true)
	if _, ok := d.b.(backends.Discoverer); !ok {
		return
	}
	q := query{name, tag, dc}
	d.mu.Lock()
	_, known := d.seen[q]
	if !known {
		d.seen[q] = nil // the first poll or recheck compares with the catalog and signals
	}
	d.mu.Unlock()
	if !known {
		backends.Notify(d.asked) // Watch starts watching it at once
	}
}

// WantNames is Want for the list of services (consul-template's services, nodes, node and
// datacenters on Consul): Watch polls the list.
func (d *Discovery) WantNames() {
	d.used.Store(true)
	if _, ok := d.b.(backends.Discoverer); !ok {
		return
	}
	d.mu.Lock()
	if d.names == nil {
		d.names = map[string][]string{}
	}
	d.mu.Unlock()
}
