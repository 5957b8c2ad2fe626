package zookeeper

import (
	"context"
	"sync"
)

// walk visits roots and, recursively, every path that visit returns as children, with n
// workers (numbered 0..n-1, passed to visit) and so at most n visits in flight (go-zookeeper pipelines them on one connection, so a wide tree is
// read at the speed of the server rather than of one round trip per node). It stops at the
// first error and returns it; it returns ctx.Err() as soon as ctx is done, leaving visits in
// flight to finish (each is bounded by the session's receive timeout).
func walk(ctx context.Context, roots []string, n int, visit func(worker int, path string) ([]string, error)) error {
	w := &walker{queue: append([]string(nil), roots...), pending: len(roots), visit: visit}
	w.cond = sync.NewCond(&w.mu)
	if len(roots) == 0 {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { w.fail(ctx.Err()) })
	defer stop()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { w.work(i) })
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && ctx.Err() != nil {
		w.err = ctx.Err()
	}
	return w.err
}

type walker struct {
	visit func(worker int, path string) ([]string, error)

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []string
	pending int // queued plus being visited
	err     error
}

func (w *walker) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.cond.Broadcast()
}

func (w *walker) work(worker int) {
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && w.pending > 0 && w.err == nil {
			w.cond.Wait()
		}
		if w.err != nil || w.pending == 0 {
			w.mu.Unlock()
			return
		}
		p := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		w.mu.Unlock()

		kids, err := w.visit(worker, p)

		w.mu.Lock()
		if err != nil && w.err == nil {
			w.err = err
		}
		w.queue = append(w.queue, kids...)
		w.pending += len(kids) - 1
		wake := w.pending == 0 || w.err != nil || len(kids) > 1
		w.mu.Unlock()
		if wake {
			w.cond.Broadcast()
		}
	}
}
