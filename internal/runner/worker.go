package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
)

// worker owns one resource in watch and interval modes: it waits for a signal, debounces,
// syncs, and retries failures with backoff.
type worker struct {
	name    string
	planned string                            // a Dynamic resource's dependencies when the watches were last planned
	res     atomic.Pointer[resource.Resource] // swapped on SIGHUP
	dirty   chan struct{}                     // a watched prefix changed: debounced
	kick    chan struct{}                     // start, interval, reload: at once
	cancel  context.CancelFunc
	done    chan struct{}
}

func newWorker(res *resource.Resource) *worker {
	w := &worker{
		name:  res.Name,
		dirty: make(chan struct{}, 1),
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	w.res.Store(res)
	return w
}

// loop runs until ctx ends. The sync in flight when it does is finished (bounded by the
// runner's stop grace).
func (r *Runner) loop(ctx context.Context, w *worker) {
	defer close(w.done)
	var (
		failures int
		retry    *time.Timer
		retryC   <-chan time.Time
		th       = throttle{every: r.minInterval, quiet: r.burstQuiet}
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-retryC:
		case <-w.dirty:
			changed, ok := newDebouncer(w.res.Load().Wait).wait(ctx, w.dirty)
			if !ok || !th.hold(ctx, changed, w.dirty) {
				return
			}
		}
		if retry != nil {
			retry.Stop()
			retry, retryC = nil, nil
		}
		if !r.acquire(ctx) {
			return
		}
		if ctx.Err() != nil { // stopping: start nothing new
			r.release()
			return
		}
		th.started(time.Now())
		res := w.res.Load()
		out, err := r.syncOne(ctx, res)
		r.release()
		if res.Dynamic != nil {
			r.replan(w, res)
		}
		if r.cfg.OnSync != nil && ctx.Err() == nil {
			r.cfg.OnSync(res, out, err)
		}
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, resource.ErrWaiting) {
			failures = 0 // not a failure: the watch on what it waits for wakes it
			r.log.Info("waiting for data", "resource", w.name, "err", err)
			continue
		}
		d := backends.Backoff(failures, r.retryBase, r.retryMax)
		failures++
		r.log.Error("sync failed; will retry", append([]any{"resource", w.name, "attempt", failures, "retry_in", d.Round(time.Millisecond), "err", err}, backendAttrs(res)...)...)
		retry = time.NewTimer(d)
		retryC = retry.C
	}
}

// replan re-plans the watches when a Dynamic resource's last render read other data than the
// watches were last planned for (watch mode only).
func (r *Runner) replan(w *worker, res *resource.Resource) {
	if !r.cfg.Watch {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if depsKey(res) == w.planned || r.runCtx == nil || r.runCtx.Err() != nil || r.workers[w.name] != w {
		return
	}
	r.rewatch(r.runCtx)
	r.rewatchServices(r.runCtx)
}

// depsKey names what a Dynamic resource's last render read, to tell when it changed.
func depsKey(res *resource.Resource) string {
	return fmt.Sprint(res.Prefixes(), res.UsesServices())
}

func (r *Runner) acquire(ctx context.Context) bool {
	select {
	case r.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *Runner) release() { <-r.sem }

// syncOne syncs res once, records metrics and health, and logs one line. When ctx ends while
// the sync runs, a backend read in progress is abandoned but rendering, writing and the
// commands go on for up to the stop grace: the resource in flight is finished, not torn.
func (r *Runner) syncOne(ctx context.Context, res *resource.Resource) (resource.Result, error) {
	st, err := r.storeFor(res)
	if err != nil {
		r.record(res, resource.Result{}, err, 0)
		return resource.Result{}, err
	}
	return r.syncFrom(ctx, res, st, st.b)
}

// syncFrom is syncOne reading from be (st's backend, or a snapshot of it).
func (r *Runner) syncFrom(ctx context.Context, res *resource.Resource, st *store, be backends.Backend) (resource.Result, error) {
	sctx, stop := r.graceful(ctx)
	defer stop()
	start := time.Now()
	res0, err := r.sync(sctx, res, r.observe(st, be, ctx), r.syncOpts)
	took := time.Since(start)
	r.record(res, res0, err, took)
	return res0, err
}

// graceful returns a context that outlives ctx by the stop grace.
func (r *Runner) graceful(ctx context.Context) (context.Context, func()) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var (
		mu sync.Mutex
		t  *time.Timer
	)
	stopAfter := context.AfterFunc(ctx, func() {
		mu.Lock()
		t = time.AfterFunc(r.stopGrace, cancel)
		mu.Unlock()
	})
	return sctx, func() {
		stopAfter()
		mu.Lock()
		if t != nil {
			t.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

func (r *Runner) record(res *resource.Resource, out resource.Result, err error, took time.Duration) {
	m := r.m
	m.syncTime.Observe(took.Seconds())
	if out.RenderTime > 0 {
		m.renderTime.Observe(out.RenderTime.Seconds())
	}
	if out.Written {
		m.writes.Inc()
	}
	switch {
	case out.Checked:
		m.checks.WithLabelValues("ok").Inc()
	case errors.Is(err, resource.ErrCheck):
		m.checks.WithLabelValues("fail").Inc()
	}
	switch {
	case out.Reloaded:
		m.reloads.WithLabelValues("ok").Inc()
	case errors.Is(err, resource.ErrReload):
		m.reloads.WithLabelValues("fail").Inc()
	}
	if out.RolledBack {
		m.rollbacks.Inc()
	}
	if out.Written || out.Checked {
		if d := took - out.RenderTime; d > 0 {
			m.commandTime.Observe(d.Seconds())
		}
	}
	result := "unchanged"
	switch {
	case err != nil:
		result = "error"
	case out.Written:
		result = "written"
	case out.Changed:
		result = "noop"
	}
	m.renders.WithLabelValues(res.Name, result).Inc()

	attrs := []any{"resource", res.Name, "changed", out.Changed, "written", out.Written,
		"reloaded", out.Reloaded, "rolled_back", out.RolledBack, "duration", took.Round(time.Microsecond)}
	attrs = append(attrs, backendAttrs(res)...)
	if err != nil {
		if r.cfg.Onetime { // in watch and interval modes the retry loop logs the failure
			r.log.Error("sync failed", append(attrs, "err", err)...)
		}
		return
	}
	m.lastSuccess.WithLabelValues(res.Name).SetToCurrentTime()
	lvl := slog.LevelDebug
	if out.Changed || r.cfg.Onetime {
		lvl = slog.LevelInfo
	}
	r.log.Log(context.Background(), lvl, "synced", attrs...)
	if r.h.synced(res.Name) && !r.cfg.Onetime {
		if r.cfg.Notifier != nil {
			r.log.Info("every resource rendered; ready")
			r.cfg.Notifier.Ready()
		}
		// The start-up's reads and renders are garbage now, and a daemon then idles: hand
		// their memory back to the system at once rather than over minutes (50 resources of
		// 1,000 keys on etcd: 55 → 40 MiB RSS).
		debug.FreeOSMemory()
	}
}

// errNotRunning is returned by Reload when Run is not running.
var errNotRunning = errors.New("runner is not running")
