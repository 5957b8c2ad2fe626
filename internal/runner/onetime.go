package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reconf/reconf/backends"
)

// onetime syncs every resource once, at most cap(r.sem) at a time, and returns errors.Join of
// the failures (each error names its resource). It never retries: with the store down it fails
// fast. Resources read from one snapshot of the union of their prefixes (see readSnapshot).
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
	var be backends.Backend = r.cfg.Backend
	if snap := readSnapshot(ctx, observed{Backend: r.cfg.Backend, m: r.m, h: r.h}, r.cfg.Resources); snap != nil {
		be = snap
	}
	var wg sync.WaitGroup
	for i, res := range r.cfg.Resources {
		if !r.acquire(ctx) {
			errs[i] = fmt.Errorf("resource %s: %w", res.Name, ctx.Err())
			continue
		}
		wg.Go(func() {
			defer r.release()
			_, errs[i] = r.syncFrom(ctx, res, be)
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
