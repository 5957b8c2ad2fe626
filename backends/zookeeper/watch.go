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
// Watch returns. It keeps a data watch and a child watch on every node of each prefix's
// subtree (and an existence watch on a prefix that does not exist yet), so a node created
// later at any depth is armed as soon as its parent's child watch fires. While it runs, it
// keeps a mirror of the subtrees' data that Get answers from (see mirror.go): arming a node
// reads it (GetW and ChildrenW), and each event is answered by the read that re-arms what it
// consumed: GetW for changed data, ChildrenW (and the reads that arm new children) for
// changed children; a deleted node is dropped. The reads for a batch of events are issued
// together. Each signal is sent once the mirror holds what caused it, so the first Get after
// a signal shows the change. It signals once when its watches are first in place (a change
// made between the caller's Get and that moment could not be seen otherwise), once after
// every reconnect, and again once the subtrees were read again after a reconnect. The mirror
// is not served from the moment the connection or session is lost, a watch is dropped or a
// re-arm fails, until the subtrees were read again.
func (c *Client) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m := newMirror(backends.Dedupe(prefixes), nil)
	q := &eventQueue{ready: make(chan struct{}, 1)}
	events := func(ev zk.Event) {
		if ev.Type == zk.EventNotWatching || (ev.Type == zk.EventSession && ev.State != zk.StateHasSession) {
			m.stop() // at once, before the loop below wakes up
		}
		q.push(ev)
	}
	ss, err := dial(c.cfg, events, &c.silent)
	for attempt := 0; err != nil; attempt++ {
		c.cfg.Logger.Warn("zookeeper watch: connect failed", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backends.Backoff(attempt, backoffBase, backoffMax)):
		}
		ss, err = dial(c.cfg, events, &c.silent)
	}
	defer ss.close()
	m.sess = ss
	c.addMirror(m)
	defer c.dropMirror(m)
	w := &watch{c: c, conn: ss.conn, roots: m.roots, q: q, m: m}
	return w.run(ctx, changed)
}

type watch struct {
	c      *Client
	conn   *zk.Conn
	roots  []string
	q      *eventQueue
	m      *mirror
	authed bool
}

func (w *watch) run(ctx context.Context, changed chan<- struct{}) error {
	log := w.c.cfg.Logger.With("backend", "zookeeper", "prefixes", w.roots)
	var (
		armedSession int64 // session the current watches live in
		needArm      = true
		hadSession   bool
		signal       bool // a change was seen: signal once the mirror holds it
		attempt      int
		retry        <-chan time.Time
	)
	for {
		if needArm && retry == nil && w.conn.State() == zk.StateHasSession {
			epoch := w.m.epoch()
			sid := w.conn.SessionID()
			err := w.seed(ctx, sid == armedSession)
			if err == nil {
				// Changes made before these watches were in place (since the caller's last
				// Get, or while the connection was lost) were not seen.
				signal = true
				needArm, attempt = false, 0
				armedSession = sid
				w.m.start(epoch) // unless the connection was lost meanwhile: a re-arm follows
				log.Debug("zookeeper watches armed", "nodes", w.m.size())
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
		var batch []zk.Event
		for _, ev := range w.q.take() {
			switch ev.Type {
			case zk.EventSession:
				if ev.State != zk.StateHasSession {
					continue
				}
				if hadSession {
					// Signal now, armed or not: the caller re-reads (the server) at once, and
					// the re-arm that follows signals again.
					log.Info("zookeeper watch: reconnected", "server", ev.Server)
					backends.Notify(changed)
				}
				hadSession = true
				// Re-read everything: changes made while the connection was down reach us as
				// events only when go-zookeeper could set the watches again.
				w.m.stop()
				needArm, retry, attempt = true, nil, 0
			case zk.EventNotWatching:
				w.m.stop()
				needArm = true
			case zk.EventNodeCreated, zk.EventNodeDataChanged, zk.EventNodeDeleted, zk.EventNodeChildrenChanged:
				signal = true
				w.consumed(ev)
				batch = append(batch, ev)
			}
		}
		if !needArm && len(batch) > 0 {
			if err := w.apply(ctx, batch); err != nil && ctx.Err() == nil {
				w.m.stop()
				log.Warn("zookeeper watch: re-arming failed; re-arming all", "err", err)
				needArm = true
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// consumed notes the watches ev used up.
func (w *watch) consumed(ev zk.Event) {
	switch ev.Type {
	case zk.EventNodeDataChanged:
		w.m.disarm(ev.Path, true, false)
	case zk.EventNodeChildrenChanged:
		w.m.disarm(ev.Path, false, true)
	case zk.EventNodeDeleted:
		w.m.disarm(ev.Path, true, true)
	}
}

// seed reads and arms the whole of each prefix's subtree into a new set of nodes and makes it
// the mirror's. In the session of the last seed (sameSession), watches that have not fired
// are still set (go-zookeeper sets them again after a reconnect): those nodes are read
// without setting them a second time.
func (w *watch) seed(ctx context.Context, sameSession bool) error {
	if w.c.seedHook != nil {
		w.c.seedHook()
	}
	if !w.authed {
		if err := w.c.auth(ctx, w.conn); err != nil {
			return err
		}
		w.authed = true // go-zookeeper resends the credentials on every reconnect
	}
	w.m.mu.RLock()
	old := w.m.nodes
	w.m.mu.RUnlock()
	var mu sync.Mutex
	next := make(map[string]*node, len(old))
	ctx, cancel := context.WithTimeout(ctx, w.c.cfg.RequestTimeout)
	defer cancel()
	err := walk(ctx, w.roots, w.c.cfg.Concurrency, func(_ int, p string) ([]string, error) {
		var prev *node
		if sameSession {
			prev = old[p] // the loop, which alone changes the flags, is waiting for us
		}
		n, err := w.read(p, prev)
		if err != nil || n == nil {
			return nil, err
		}
		mu.Lock()
		next[p] = n
		mu.Unlock()
		return childPaths(p, n.kids), nil
	})
	if err != nil {
		return err
	}
	w.m.replace(next)
	return nil
}

// read reads p's data and children, setting the watches prev (p as last read in this
// session, or nil) does not hold. It returns nil when p does not exist; for a root it then
// sets an existence watch, to see it created.
func (w *watch) read(p string, prev *node) (*node, error) {
	for attempt := 0; ; attempt++ {
		var (
			data []byte
			err  error
		)
		if prev != nil && prev.dataArmed {
			data, _, err = w.conn.Get(p)
		} else {
			data, _, _, err = w.conn.GetW(p)
		}
		if errors.Is(err, zk.ErrNoNode) {
			if !w.isRoot(p) {
				return nil, nil // its parent's child watch sees it come back
			}
			exists, _, _, err := w.conn.ExistsW(p)
			if err != nil || !exists {
				return nil, w.ignoreGone(p, err)
			}
			if attempt >= 3 {
				return nil, w.c.wrap(w.conn, "watch", p, errors.New("created and deleted again and again"))
			}
			prev = nil
			continue
		}
		if err != nil {
			return nil, w.ignoreGone(p, err)
		}
		var kids []string
		if prev != nil && prev.kidsArmed {
			kids, _, err = w.conn.Children(p)
		} else {
			kids, _, _, err = w.conn.ChildrenW(p)
		}
		if err != nil {
			// Gone since: its data watch reports the deletion.
			return nil, w.ignoreGone(p, err)
		}
		return &node{data: string(data), kids: kids, dataArmed: true, kidsArmed: true}, nil
	}
}

// task is one read that apply makes.
type task struct {
	kind int // taskData, taskKids or taskNode
	path string
}

const (
	taskData = iota // GetW: changed data
	taskKids        // ChildrenW: changed children
	taskNode        // a node new to the mirror: read and arm it, then its children
)

// apply brings the mirror up to date with a batch of events, issuing the reads (which set
// the watches again) all at once, and the reads of nodes that appeared as their parents'
// children are read.
func (w *watch) apply(ctx context.Context, batch []zk.Event) error {
	seen := map[task]bool{}
	var tasks []task
	add := func(t task) {
		if !seen[t] {
			seen[t] = true
			tasks = append(tasks, t)
		}
	}
	for _, ev := range batch {
		switch ev.Type {
		case zk.EventNodeDataChanged:
			if w.m.has(ev.Path) {
				add(task{taskData, ev.Path})
			}
		case zk.EventNodeChildrenChanged:
			if w.m.has(ev.Path) {
				add(task{taskKids, ev.Path})
			}
		case zk.EventNodeDeleted:
			w.m.remove(ev.Path)
			if w.isRoot(ev.Path) {
				add(task{taskNode, ev.Path}) // set the existence watch
			}
		case zk.EventNodeCreated:
			if w.isRoot(ev.Path) {
				add(task{taskNode, ev.Path})
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, w.c.cfg.RequestTimeout)
	defer cancel()
	return walk(ctx, tasks, w.c.cfg.Concurrency, func(_ int, t task) ([]task, error) {
		var fresh []string
		switch t.kind {
		case taskData:
			data, _, _, err := w.conn.GetW(t.path)
			if errors.Is(err, zk.ErrNoNode) {
				return w.gone(t.path), nil
			}
			if err != nil {
				return nil, w.c.wrap(w.conn, "watch", t.path, err)
			}
			w.m.setData(t.path, data)
		case taskKids:
			kids, _, _, err := w.conn.ChildrenW(t.path)
			if errors.Is(err, zk.ErrNoNode) {
				return w.gone(t.path), nil
			}
			if err != nil {
				return nil, w.c.wrap(w.conn, "watch", t.path, err)
			}
			fresh = w.m.setKids(t.path, kids)
		case taskNode:
			n, err := w.read(t.path, nil)
			if err != nil || n == nil {
				return nil, err
			}
			fresh = w.m.put(t.path, n)
		}
		next := make([]task, 0, len(fresh))
		for _, p := range fresh {
			next = append(next, task{taskNode, p})
		}
		return next, nil
	})
}

// gone drops a node found missing; a root gets its existence watch set again.
func (w *watch) gone(p string) []task {
	w.m.remove(p)
	if w.isRoot(p) {
		return []task{{taskNode, p}}
	}
	return nil
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
