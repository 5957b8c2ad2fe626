package runner

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
)

// watch is one Watcher.Watch (or a poller's) on one prefix of one store, shared by every
// resource that reads under it. Its subscribers are swapped on SIGHUP without restarting the
// watch.
type watch struct {
	prefix string
	subs   atomic.Pointer[[]*worker]
	cancel context.CancelFunc
	done   chan struct{}
}

// watchKey names a watch: a prefix of a store (its store.name: "" is the default store).
type watchKey struct{ store, prefix string }

// plan maps each distinct watch prefix of each store (backends.Dedupe over the prefixes of
// every resource reading that store; storeOf names the store a resource reads) to the workers
// that read under it.
func plan(workers map[string]*worker, storeOf func(*resource.Resource) string) map[watchKey][]*worker {
	byStore := map[string][]string{}
	for _, w := range workers {
		res := w.res.Load()
		st := storeOf(res)
		byStore[st] = append(byStore[st], res.Prefixes()...)
	}
	out := make(map[watchKey][]*worker)
	for st, all := range byStore {
		for _, p := range backends.Dedupe(all) {
			out[watchKey{st, p}] = nil
		}
	}
	for _, name := range sortedKeys(workers) {
		w := workers[name]
		res := w.res.Load()
		st := storeOf(res)
		seen := map[string]bool{}
		for _, p := range res.Prefixes() {
			p = backends.CleanPrefix(p)
			for k := range out {
				if k.store == st && backends.UnderPrefix(p, k.prefix) && !seen[k.prefix] {
					seen[k.prefix] = true
					out[k] = append(out[k], w)
				}
			}
		}
	}
	return out
}

// rewatch starts watches for new prefixes, stops those no longer needed and hands every kept
// watch its new subscribers. Called with r.mu held.
func (r *Runner) rewatch(ctx context.Context) {
	want := plan(r.workers, r.storeName)
	for _, w := range r.workers { // what the plan saw, so that replan knows when it is stale
		if res := w.res.Load(); res.Dynamic != nil {
			w.planned = depsKey(res)
		}
	}
	for k, wt := range r.watches {
		if _, ok := want[k]; !ok {
			wt.cancel()
			<-wt.done
			delete(r.watches, k)
			r.log.Info("watch stopped", r.watchAttrs(k)...)
		}
	}
	for k, subs := range want {
		st, ok := r.stores[k.store]
		if !ok {
			continue // its resources fail to sync, naming the unknown backend
		}
		wt, ok := r.watches[k]
		if !ok {
			wt = r.startWatch(ctx, st, k)
			r.watches[k] = wt
		}
		wt.subs.Store(&subs)
	}
}

// watchAttrs are the log attributes naming the watch k: its prefix, and its store unless it
// is the default one (so a single-store setup logs as before).
func (r *Runner) watchAttrs(k watchKey) []any {
	if k.store == "" {
		return []any{"watch", k.prefix}
	}
	return []any{"backend", k.store, "watch", k.prefix}
}

func (r *Runner) startWatch(ctx context.Context, st *store, k watchKey) *watch {
	wb, canWatch := st.b.(backends.Watcher)
	return r.startSignal(ctx, k, func(ctx context.Context, changed chan<- struct{}) error {
		switch {
		case canWatch:
			return wb.Watch(ctx, []string{k.prefix}, changed)
		case st.poll != nil:
			return st.poll.watch(ctx, k.prefix, changed)
		}
		<-ctx.Done() // not started by Run: nothing to poll with
		return ctx.Err()
	})
}

// startSignal runs fn (a Watch-like function) until ctx ends, handing each of its signals to
// the watch's subscribers.
func (r *Runner) startSignal(ctx context.Context, k watchKey, fn func(context.Context, chan<- struct{}) error) *watch {
	wctx, cancel := context.WithCancel(ctx)
	wt := &watch{prefix: k.prefix, cancel: cancel, done: make(chan struct{})}
	empty := []*worker{}
	wt.subs.Store(&empty)
	changed := make(chan struct{}, 1)
	r.watchCalls.Add(1)
	go func() {
		defer close(wt.done)
		inner := make(chan struct{})
		go func() { // fan out signals to the subscribers
			defer close(inner)
			for {
				select {
				case <-wctx.Done():
					return
				case <-changed:
					r.m.watchSignals.Inc()
					for _, w := range *wt.subs.Load() {
						backends.Notify(w.dirty)
					}
				}
			}
		}()
		r.keepWatching(wctx, k, fn, changed)
		<-inner
	}()
	r.log.Info("watch started", r.watchAttrs(k)...)
	return wt
}

// keepWatching keeps fn running until ctx ends: when it returns an error it is logged,
// counted and restarted with backoff, and the subscribers are signalled (changes may have been
// missed).
func (r *Runner) keepWatching(ctx context.Context, k watchKey, fn func(context.Context, chan<- struct{}) error, changed chan struct{}) {
	for n := 0; ; {
		start := time.Now()
		err := fn(ctx, changed)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch returned without an error")
		}
		if time.Since(start) > r.retryMax {
			n = 0
		}
		d := backends.Backoff(n, r.retryBase, r.retryMax)
		n++
		r.m.backendErrors.WithLabelValues(storeLabel(k.store)).Inc()
		r.log.Error("watch failed; restarting", append(r.watchAttrs(k), "attempt", n, "in", d.Round(time.Millisecond), "err", err)...)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backends.Notify(changed)
	}
}

// servicesWatcher is what package discovery offers beside template.Services: a signal when
// the service instances templates can see may have changed (Consul's health API, or the
// services prefix of the key convention). Service changes must wake `service` templates even
// when no watched key changes, as on Consul.
type servicesWatcher interface {
	Watch(ctx context.Context, changed chan<- struct{}) error
}

// rewatchServices runs one services watch while any resource's template calls `service` or
// `services`, feeding those resources only. Called with r.mu held.
func (r *Runner) rewatchServices(ctx context.Context) {
	sw, ok := r.cfg.Services.(servicesWatcher)
	if !ok {
		return
	}
	var subs []*worker
	for _, name := range sortedKeys(r.workers) {
		if w := r.workers[name]; usesServices(w.res.Load()) {
			subs = append(subs, w)
		}
	}
	switch {
	case len(subs) == 0 && r.svcWatch != nil:
		r.svcWatch.cancel()
		<-r.svcWatch.done
		r.svcWatch = nil
		r.log.Info("watch stopped", "watch", "services")
	case len(subs) > 0 && r.svcWatch == nil:
		r.svcWatch = r.startSignal(ctx, watchKey{prefix: "services"}, sw.Watch)
	}
	if r.svcWatch != nil {
		r.svcWatch.subs.Store(&subs)
	}
}

// usesServices reports whether res's template calls `service` or `services`.
func usesServices(res *resource.Resource) bool {
	return res.UsesServices()
}

// setResources makes list the running set: workers of resources that disappeared are stopped,
// new ones started, kept ones handed their new definition; watches follow (in watch mode);
// every resource is synced at once. Called with r.mu held.
func (r *Runner) setResources(ctx context.Context, list []*resource.Resource) {
	next := make(map[string]*resource.Resource, len(list))
	names := make([]string, 0, len(list))
	for _, res := range list {
		if _, dup := next[res.Name]; dup {
			r.log.Warn("duplicate resource name; keeping the first", "resource", res.Name)
			continue
		}
		next[res.Name] = res
		names = append(names, res.Name)
	}
	for name, w := range r.workers {
		if _, ok := next[name]; !ok {
			w.cancel()
			delete(r.workers, name)
			r.m.forget(name)
			r.log.Info("resource removed", "resource", name)
		}
	}
	for name, res := range next {
		if w, ok := r.workers[name]; ok {
			w.res.Store(res)
			continue
		}
		w := newWorker(res)
		wctx, cancel := context.WithCancel(ctx)
		w.cancel = cancel
		r.workers[name] = w
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.loop(wctx, w)
		}()
	}
	r.h.setResources(names)
	r.m.resources.Set(float64(len(r.workers)))
	if r.cfg.Watch {
		r.rewatch(ctx)
		r.rewatchServices(ctx)
	}
	for _, w := range r.workers {
		backends.Notify(w.kick)
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
