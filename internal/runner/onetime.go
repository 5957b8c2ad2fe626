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
// fast. The resources of each store read at one revision: through a view pinned to it when
// the store has one (pinner), else from one snapshot of the union of their prefixes (see
// readSnapshot).
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
	for name, list := range byStore {
		if st, ok := r.stores[name]; ok {
			from[name] = st.b
			if p, ok := st.b.(pinner); ok {
				from[name] = p.Pinned()
				continue
			}
			if snap := readSnapshot(ctx, r.observe(st, st.b, nil), list); snap != nil {
				from[name] = snap
			}
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
		wg.Go(func() {
			defer r.release()
			_, errs[i] = r.syncFrom(ctx, res, st, from[st.name])
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
