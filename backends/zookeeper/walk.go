package zookeeper

import (
	"context"
	"sync"
)

// walk visits roots and, recursively, every item that visit returns, with at most n workers
// (numbered 0..n-1, passed to visit) and so at most n visits in flight (go-zookeeper pipelines
// them on one connection, so a wide tree is read at the speed of the server rather than of
// one round trip per node). Workers are started as work appears, so a walk of one item costs
// one goroutine. It stops at the first error and returns it; it returns ctx.Err() as soon as
// ctx is done, leaving visits in flight to finish (each is bounded by the session's receive
// timeout).
func walk[T any](ctx context.Context, roots []T, n int, visit func(worker int, item T) ([]T, error)) error {
	if len(roots) == 0 {
		return nil
	}
	w := &walker[T]{queue: append([]T(nil), roots...), pending: len(roots), visit: visit, max: max(n, 1), done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	stop := context.AfterFunc(ctx, func() { w.fail(ctx.Err()) })
	defer stop()
	w.mu.Lock()
	w.spawnLocked()
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && ctx.Err() != nil {
		w.err = ctx.Err()
	}
	return w.err
}

type walker[T any] struct {
	visit func(worker int, item T) ([]T, error)
	max   int
	done  chan struct{} // closed by the last worker to stop

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []T
	pending int // queued plus being visited
	workers int // started
	alive   int // started and not stopped
	busy    int // visiting
	err     error
}

// spawnLocked starts workers for queued items that no started worker is free to take (a
// worker is free unless it is visiting), up to max.
func (w *walker[T]) spawnLocked() {
	for w.workers < w.max && w.workers-w.busy < len(w.queue) {
		i := w.workers
		w.workers++
		w.alive++
		go w.work(i)
	}
}

func (w *walker[T]) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.cond.Broadcast()
}

func (w *walker[T]) work(worker int) {
	w.mu.Lock()
	for {
		for len(w.queue) == 0 && w.pending > 0 && w.err == nil {
			w.cond.Wait()
		}
		if w.err != nil || w.pending == 0 {
			// Final: no worker starts after this, so alive reaches 0 once.
			w.alive--
			if w.alive == 0 {
				close(w.done)
			}
			w.mu.Unlock()
			w.cond.Broadcast()
			return
		}
		item := w.queue[len(w.queue)-1]
		var zero T
		w.queue[len(w.queue)-1] = zero
		w.queue = w.queue[:len(w.queue)-1]
		w.busy++
		w.mu.Unlock()

		kids, err := w.visit(worker, item)

		w.mu.Lock()
		w.busy--
		if err != nil && w.err == nil {
			w.err = err
		}
		w.queue = append(w.queue, kids...)
		w.pending += len(kids) - 1
		if w.err != nil || w.pending == 0 {
			w.cond.Broadcast()
			continue
		}
		if len(kids) > 1 {
			w.cond.Broadcast()
		}
		w.spawnLocked()
	}
}
