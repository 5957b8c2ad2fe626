package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
)

// onetime syncs every resource once, at most cap(r.sem) at a time, and returns errors.Join of
// the failures (each error names its resource). It never retries: with the store down it fails
// fast. The resources of each store read at one revision: when the store has a view pinned to
// one (pinner), groups of onetimeGroup resources each read one snapshot of their prefixes
// through it, taken when the first of them starts and dropped when the last is done; else all
// of them read one snapshot of the union of their prefixes (see readSnapshot).
// While it runs the Go runtime's memory is softly limited (see limitMemory).
func (r *Runner) onetime(ctx context.Context) error {
	defer limitMemory()()
	start := time.Now()
	names := make([]string, 0, len(r.cfg.Resources))
	for _, res := range r.cfg.Resources {
		names = append(names, res.Name)
	}
	r.h.setResources(names)
	r.m.resources.Set(float64(len(names)))
	errs := make([]error, len(r.cfg.Resources))
	byStore := map[string][]*resource.Resource{}
	for _, res := range r.cfg.Resources {
		name := r.storeName(res)
		byStore[name] = append(byStore[name], res)
	}
	from := map[string]backends.Backend{} // each store's snapshot, or the store itself
	groups := map[*resource.Resource]*group{}
	for name, list := range byStore {
		st, ok := r.stores[name]
		if !ok {
			continue
		}
		from[name] = st.b
		if p, ok := st.b.(pinner); ok {
			view := p.Pinned()
			for lo := 0; lo < len(list); lo += onetimeGroup {
				g := &group{list: list[lo:min(lo+onetimeGroup, len(list))]}
				g.left, g.read = len(g.list), func() backends.Backend {
					if snap := readSnapshot(ctx, r.observe(st, view, nil), g.list); snap != nil {
						return snap
					}
					return view
				}
				for _, res := range g.list {
					groups[res] = g
				}
			}
			continue
		}
		if snap := readSnapshot(ctx, r.observe(st, st.b, nil), list); snap != nil {
			from[name] = snap
		}
	}
	var wg sync.WaitGroup
	for i, res := range r.cfg.Resources {
		st, err := r.storeFor(res)
		if err != nil {
			r.record(res, resource.Result{}, err, 0)
			errs[i] = err
			continue
		}
		if !r.acquire(ctx) {
			errs[i] = fmt.Errorf("resource %s: %w", res.Name, ctx.Err())
			continue
		}
		be, g := from[st.name], groups[res]
		wg.Go(func() {
			defer r.release()
			if g != nil {
				be = g.get()
				defer g.done()
			}
			_, errs[i] = r.syncFrom(ctx, res, st, be)
		})
	}
	wg.Wait()
	err := errors.Join(errs...)
	failed := 0
	for _, e := range errs {
		if e != nil {
			failed++
		}
	}
	r.log.Info("onetime done", "resources", len(names), "failed", failed, "duration", time.Since(start).Round(time.Millisecond))
	return err
}

// onetimeGroup is how many resources of a store with a pinned view share one read in -onetime:
// twice the resources rendered at once, so that about two groups' keys are in memory at a
// time instead of every resource's. 50 resources × 1,000 keys from etcd then take 7 reads
// instead of 1 (etcd 3.4 spends ~0.6 ms of CPU per request) or 50 (one per resource).
const onetimeGroup = 8

// group is resources of one store reading one snapshot through the store's pinned view: the
// first of them to start reads it (read; the others wait for it), the last to finish drops it.
type group struct {
	list []*resource.Resource
	read func() backends.Backend
	mu   sync.Mutex
	from backends.Backend // the snapshot, or the view when there is none (see readSnapshot)
	left int              // members not yet done
}

func (g *group) get() backends.Backend {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.from == nil { // not read yet: done drops it only once every member, each after its get, is done
		g.from = g.read()
	}
	return g.from
}

func (g *group) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.left--; g.left == 0 {
		g.from = nil
	}
}
