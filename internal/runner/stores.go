package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
)

// Store is a named backend: a [backends.NAME] table of reconf.toml.
type Store struct {
	Driver  string // the registered backend name ("vault"), for logs
	Backend backends.Backend
}

// store is one backend as the runner uses it: the default ("" in Resource.Backend, "default"
// in logs and metrics) or a named one. Names whose Backend is the same value (the CLI opens
// one backend per distinct configuration) share one store, named by the first of them ("" if
// it is the default), and so share its watches.
type store struct {
	name, driver string
	b            backends.Backend
	poll         *poller // watch mode, a backend that cannot watch: its one poller
}

// label is the store's name in logs and metrics.
func (s *store) label() string { return storeLabel(s.name) }

// storeLabel is the name of the store named name (Resource.Backend) in logs and metrics.
func storeLabel(name string) string {
	if name == "" {
		return resource.DefaultBackend
	}
	return name
}

// newStores checks cfg's stores and resources and returns the stores by name.
func newStores(cfg Config) (map[string]*store, error) {
	if cfg.Backend == nil {
		return nil, errors.New("runner: no backend")
	}
	out := map[string]*store{"": {driver: cfg.BackendDriver, b: cfg.Backend}}
	for _, name := range sortedKeys(cfg.Stores) {
		st := cfg.Stores[name]
		switch {
		case name == "" || name == resource.DefaultBackend:
			return nil, fmt.Errorf("runner: store %q: the name is the default backend's", name)
		case st.Backend == nil:
			return nil, fmt.Errorf("runner: store %q: no backend", name)
		}
		out[name] = &store{name: name, driver: st.Driver, b: st.Backend}
		for _, other := range sortedKeys(out) {
			if o := out[other]; other != name && sameBackend(o.b, st.Backend) {
				out[name] = o
				break
			}
		}
	}
	for _, res := range cfg.Resources {
		if _, ok := out[res.Backend]; !ok {
			return nil, unknownStore(res, out)
		}
	}
	return out, nil
}

func unknownStore(res *resource.Resource, stores map[string]*store) error {
	var names []string
	for _, n := range sortedKeys(stores) {
		if n != "" {
			names = append(names, n)
		}
	}
	return fmt.Errorf("resource %s: %w", res.Name, resource.UnknownBackend(res.Backend, names))
}

// sameBackend reports whether a and b are the same backend value (false for a type whose
// values cannot be compared).
func sameBackend(a, b backends.Backend) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// storeName is the name of the store res reads (res.Backend when it is unknown).
func (r *Runner) storeName(res *resource.Resource) string {
	if st, ok := r.stores[res.Backend]; ok {
		return st.name
	}
	return res.Backend
}

// storeFor returns the store res reads.
func (r *Runner) storeFor(res *resource.Resource) (*store, error) {
	st, ok := r.stores[res.Backend]
	if !ok {
		return nil, unknownStore(res, r.stores)
	}
	return st, nil
}

// backendAttrs are the log attributes naming the store res reads, none for the default one
// (a single-store setup logs as before).
func backendAttrs(res *resource.Resource) []any {
	if res.Backend == "" {
		return nil
	}
	return []any{"backend", res.Backend}
}

// observe wraps st's backend to record its reads for metrics and /ready; a read also ends
// when stop does (nil: never).
func (r *Runner) observe(st *store, b backends.Backend, stop context.Context) observed {
	return observed{Backend: b, name: st.label(), m: r.m, h: r.h, stop: stop}
}

// startPollers starts one poller per store that cannot watch, re-reading the union of its
// watched prefixes every Config.Interval (DefaultPollInterval when 0), and says so once.
// Called at the start of Run in watch mode; shutdown stops them.
func (r *Runner) startPollers(ctx context.Context) {
	every := r.cfg.Interval
	if every <= 0 {
		every = r.pollInterval
	}
	pctx, cancel := context.WithCancel(ctx)
	r.stopPollers = cancel
	seen := map[*store]bool{}
	for _, name := range sortedKeys(r.stores) {
		st := r.stores[name]
		if _, ok := st.b.(backends.Watcher); ok || seen[st] {
			continue
		}
		seen[st] = true
		driver := st.driver
		if driver == "" {
			driver = "unnamed driver"
		}
		r.log.Info(fmt.Sprintf("backend %q (%s) cannot be watched: polling every %s", st.label(), driver, every))
		st.poll = &poller{b: r.observe(st, st.b, nil), every: every, subs: map[*pollSub]bool{},
			wake: make(chan struct{}, 1), log: r.log.With("backend", st.label())}
		r.wg.Go(func() { st.poll.run(pctx) })
	}
}

// poller re-reads, every period, the union of the prefixes watched on a backend that cannot
// watch, in one read, and signals the watch of each prefix whose data changed.
type poller struct {
	b     backends.Backend
	every time.Duration
	log   *slog.Logger

	mu   sync.Mutex
	subs map[*pollSub]bool
	wake chan struct{} // a new subscriber wants its first snapshot now
}

type pollSub struct {
	prefix  string
	changed chan<- struct{}
	last    map[string]string // nil until the first read
}

// watch is a Watcher.Watch of one prefix served by the poller: it returns when ctx ends.
func (p *poller) watch(ctx context.Context, prefix string, changed chan<- struct{}) error {
	s := &pollSub{prefix: backends.CleanPrefix(prefix), changed: changed}
	p.mu.Lock()
	p.subs[s] = true
	p.mu.Unlock()
	backends.Notify(p.wake)
	<-ctx.Done()
	p.mu.Lock()
	delete(p.subs, s)
	p.mu.Unlock()
	return ctx.Err()
}

// run polls until ctx ends.
func (p *poller) run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	failed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			failed = p.poll(ctx, failed, false)
		case <-p.wake:
			failed = p.poll(ctx, failed, true)
		}
	}
}

// poll reads once (with onlyNew, only for subscribers that have no snapshot yet) and signals
// the subscribers whose data changed, or all of them after a failed read (changes may have
// been missed). It returns whether the read failed.
func (p *poller) poll(ctx context.Context, failed, onlyNew bool) bool {
	onlyNew = onlyNew && !failed
	p.mu.Lock()
	subs := slices.Collect(maps.Keys(p.subs))
	p.mu.Unlock()
	var prefixes []string
	for _, s := range subs {
		if !onlyNew || s.last == nil {
			prefixes = append(prefixes, s.prefix)
		}
	}
	if len(prefixes) == 0 {
		return failed
	}
	kv, err := p.b.Get(ctx, backends.Dedupe(prefixes))
	if err != nil {
		if !failed && ctx.Err() == nil {
			p.log.Warn("poll failed", "err", err)
		}
		return true
	}
	for _, s := range subs {
		if onlyNew && s.last != nil {
			continue
		}
		part := backends.Filter(kv, []string{s.prefix})
		if (s.last != nil && !maps.Equal(s.last, part)) || failed {
			backends.Notify(s.changed)
		}
		s.last = part
	}
	return false
}
