package zookeeper

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
)

// Backoff between failed attempts to (re)arm the watches.
const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 10 * time.Second
)

// Watch implements backends.Watcher on a connection (and session) of its own, closed when
// Watch returns. It keeps an existence/data watch on every node of each prefix's subtree (on a
// prefix that does not exist yet, the existence watch sees it created) and a child watch on
// every existing node, so a node created later at any depth is armed as soon as its parent's
// child watch fires. Every watch is re-armed before the signal is sent, so a Get made after a
// signal cannot miss a later change. It signals once when its watches are first in place
// (a change made between the caller's Get and that moment could not be seen otherwise), once
// after every reconnect, and again after re-arming the whole tree when the session expired
// (all watches are then gone).
func (c *Client) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q := &eventQueue{ready: make(chan struct{}, 1)}
	ss, err := dial(c.cfg, q.push)
	for attempt := 0; err != nil; attempt++ {
		c.cfg.Logger.Warn("zookeeper watch: connect failed", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backends.Backoff(attempt, backoffBase, backoffMax)):
		}
		ss, err = dial(c.cfg, q.push)
	}
	defer ss.close()
	conn := ss.conn
	w := &watch{c: c, conn: conn, roots: backends.Dedupe(prefixes), q: q, known: map[string]bool{}}
	return w.run(ctx, changed)
}

type watch struct {
	c      *Client
	conn   *zk.Conn
	roots  []string
	q      *eventQueue
	authed bool

	mu    sync.Mutex
	known map[string]bool // nodes whose existence/data and child watches are armed
}

func (w *watch) run(ctx context.Context, changed chan<- struct{}) error {
	log := w.c.cfg.Logger.With("backend", "zookeeper", "prefixes", w.roots)
	var (
		armedSession int64 // session the current watches live in
		needArm      = true
		hadSession   bool
		signal       bool // a change was seen: signal once its watches are re-armed
		attempt      int
		retry        <-chan time.Time
	)
	for {
		if needArm && retry == nil && w.conn.State() == zk.StateHasSession {
			err := w.armAll(ctx)
			if err == nil {
				// Changes made before these watches were in place (since the caller's last
				// Get, or while the old ones were lost) were not seen.
				signal = true
				needArm, attempt = false, 0
				armedSession = w.conn.SessionID()
				log.Debug("zookeeper watches armed", "nodes", w.count())
			} else if ctx.Err() == nil {
				log.Warn("zookeeper watch: arming failed; retrying", "err", err)
				retry = time.After(backends.Backoff(attempt, backoffBase, backoffMax))
				attempt++
			}
		}
		if signal && !needArm {
			backends.Notify(changed)
			signal = false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retry:
			retry = nil
			continue
		case <-w.q.ready:
		}
		for _, ev := range w.q.take() {
			switch ev.Type {
			case zk.EventSession:
				if ev.State != zk.StateHasSession {
					continue
				}
				if hadSession {
					// Signal now, armed or not: the caller re-reads at once, and a re-arm
					// that follows signals again.
					log.Info("zookeeper watch: reconnected", "server", ev.Server)
					backends.Notify(changed)
				}
				hadSession = true
				if w.conn.SessionID() != armedSession {
					needArm, retry, attempt = true, nil, 0
				}
			case zk.EventNotWatching:
				needArm = true
			case zk.EventNodeCreated, zk.EventNodeDataChanged, zk.EventNodeDeleted, zk.EventNodeChildrenChanged:
				signal = true
				if needArm {
					continue // the whole tree is re-armed anyway
				}
				if err := w.rearm(ctx, ev); err != nil && ctx.Err() == nil {
					log.Warn("zookeeper watch: re-arming failed; re-arming all", "path", ev.Path, "err", err)
					needArm = true
				}
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// rearm re-arms what ev consumed and arms nodes that appeared.
func (w *watch) rearm(ctx context.Context, ev zk.Event) error {
	switch ev.Type {
	case zk.EventNodeDataChanged:
		_, _, _, err := w.conn.ExistsW(ev.Path)
		return w.ignoreGone(ev.Path, err)
	case zk.EventNodeDeleted:
		w.mu.Lock()
		delete(w.known, ev.Path)
		w.mu.Unlock()
		if w.isRoot(ev.Path) {
			return w.arm(ctx, []string{ev.Path}) // existence watch: see it come back
		}
		return nil
	case zk.EventNodeCreated:
		return w.arm(ctx, []string{ev.Path})
	case zk.EventNodeChildrenChanged:
		kids, _, _, err := w.conn.ChildrenW(ev.Path)
		if err != nil {
			return w.ignoreGone(ev.Path, err)
		}
		var fresh []string
		w.mu.Lock()
		for _, k := range childPaths(ev.Path, kids) {
			if !w.known[k] {
				fresh = append(fresh, k)
			}
		}
		w.mu.Unlock()
		return w.arm(ctx, fresh)
	}
	return nil
}

// armAll forgets every watch and arms the whole of each prefix's subtree.
func (w *watch) armAll(ctx context.Context) error {
	if !w.authed {
		if err := w.c.auth(ctx, w.conn); err != nil {
			return err
		}
		w.authed = true // go-zookeeper resends the credentials on every reconnect
	}
	w.mu.Lock()
	w.known = map[string]bool{}
	w.mu.Unlock()
	return w.arm(ctx, w.roots)
}

// arm sets an existence/data watch on each path and, where it exists, a child watch, then
// does the same for every child.
func (w *watch) arm(ctx context.Context, paths []string) error {
	ctx, cancel := context.WithTimeout(ctx, w.c.cfg.RequestTimeout)
	defer cancel()
	return walk(ctx, paths, w.c.cfg.Concurrency, func(_ int, p string) ([]string, error) {
		exists, _, _, err := w.conn.ExistsW(p)
		if err != nil || !exists {
			return nil, w.ignoreGone(p, err)
		}
		kids, _, _, err := w.conn.ChildrenW(p)
		if err != nil {
			return nil, w.ignoreGone(p, err)
		}
		w.mu.Lock()
		w.known[p] = true
		w.mu.Unlock()
		return childPaths(p, kids), nil
	})
}

// ignoreGone drops ErrNoNode (the node went away; its parent's child watch or its own
// existence watch covers it) and classifies other errors.
func (w *watch) ignoreGone(p string, err error) error {
	if err == nil || errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	return w.c.wrap(w.conn, "watch", p, err)
}

func (w *watch) isRoot(p string) bool {
	for _, r := range w.roots {
		if r == p {
			return true
		}
	}
	return false
}

func (w *watch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.known)
}

// eventQueue is an unbounded queue fed by go-zookeeper's event callback, which must not block.
type eventQueue struct {
	mu    sync.Mutex
	evs   []zk.Event
	ready chan struct{}
}

func (q *eventQueue) push(ev zk.Event) {
	q.mu.Lock()
	q.evs = append(q.evs, ev)
	q.mu.Unlock()
	backends.Notify(q.ready)
}

func (q *eventQueue) take() []zk.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.evs
	q.evs = nil
	return evs
}
