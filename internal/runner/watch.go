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

// watch is one Watcher.Watch (or backends.Poll) on one prefix, shared by every resource that
// reads under it. Its subscribers are swapped on SIGHUP without restarting the watch.
type watch struct {
	prefix string
	subs   atomic.Pointer[[]*worker]
	cancel context.CancelFunc
	done   chan struct{}
}

// plan maps each distinct watch prefix (backends.Dedupe over every resource's prefixes) to the
// workers that read under it.
func plan(workers map[string]*worker) map[string][]*worker {
	var all []string
	for _, w := range workers {
		all = append(all, w.res.Load().Prefixes()...)
	}
	out := make(map[string][]*worker)
	for _, p := range backends.Dedupe(all) {
		out[p] = nil
	}
	for _, name := range sortedKeys(workers) {
		w := workers[name]
		seen := map[string]bool{}
		for _, p := range w.res.Load().Prefixes() {
			p = backends.CleanPrefix(p)
			for wp := range out {
				if backends.UnderPrefix(p, wp) && !seen[wp] {
					seen[wp] = true
					out[wp] = append(out[wp], w)
				}
			}
		}
	}
	return out
}

// rewatch starts watches for new prefixes, stops those no longer needed and hands every kept
// watch its new subscribers. Called with r.mu held.
func (r *Runner) rewatch(ctx context.Context) {
	want := plan(r.workers)
	for _, w := range r.workers { // what the plan saw, so that replan knows when it is stale
		if res := w.res.Load(); res.Dynamic != nil {
			w.planned = depsKey(res)
		}
	}
	for p, wt := range r.watches {
		if _, ok := want[p]; !ok {
			wt.cancel()
			<-wt.done
			delete(r.watches, p)
			r.log.Info("watch stopped", "watch", p)
		}
	}
	for p, subs := range want {
		wt, ok := r.watches[p]
		if !ok {
			wt = r.startWatch(ctx, p)
			r.watches[p] = wt
		}
		wt.subs.Store(&subs)
	}
}

func (r *Runner) startWatch(ctx context.Context, prefix string) *watch {
	wb, canWatch := r.cfg.Backend.(backends.Watcher)
	b := observed{Backend: r.cfg.Backend, m: r.m, h: r.h}
	plog := r.log.With("prefix", prefix)
	return r.startSignal(ctx, prefix, func(ctx context.Context, changed chan<- struct{}) error {
		if canWatch {
			return wb.Watch(ctx, []string{prefix}, changed)
		}
		return backends.Poll(ctx, b, []string{prefix}, r.pollInterval, changed, plog)
	})
}

// startSignal runs fn (a Watch-like function) until ctx ends, handing each of its signals to
// the watch's subscribers.
func (r *Runner) startSignal(ctx context.Context, what string, fn func(context.Context, chan<- struct{}) error) *watch {
	wctx, cancel := context.WithCancel(ctx)
	wt := &watch{prefix: what, cancel: cancel, done: make(chan struct{})}
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
		r.keepWatching(wctx, what, fn, changed)
		<-inner
	}()
	r.log.Info("watch started", "watch", what)
	return wt
}

// keepWatching keeps fn running until ctx ends: when it returns an error it is logged,
// counted and restarted with backoff, and the subscribers are signalled (changes may have been
// missed).
func (r *Runner) keepWatching(ctx context.Context, what string, fn func(context.Context, chan<- struct{}) error, changed chan struct{}) {
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
		r.m.backendErrors.Inc()
		r.log.Error("watch failed; restarting", "watch", what, "attempt", n, "in", d.Round(time.Millisecond), "err", err)
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
		r.svcWatch = r.startSignal(ctx, "services", sw.Watch)
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
