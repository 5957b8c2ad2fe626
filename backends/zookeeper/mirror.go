package zookeeper

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconf/reconf/backends"
)

// mirrorFresh is how long after the last byte from the server a mirror is still served. A
// healthy session hears a ping reply every third of the session timeout; a Get that comes
// later than this after the last one reads the server (and so fails when the server froze).
const mirrorFresh = 2 * time.Second

// sockState is what a peek at a socket's receive queue found.
type sockState int

const (
	sockClosed  sockState = iota // end of stream, an error, or the socket cannot be peeked at
	sockIdle                     // nothing to read
	sockPending                  // bytes not read yet
)

// mirror holds the data of every node of a live Watch's subtrees, kept current from the
// watch events (see watch.go). Get answers from it while it is serving: after the watches
// were armed and the subtrees read, for as long as the session is live and no re-arm failed.
type mirror struct {
	roots []string // deduplicated, cleaned
	sess  *session
	// state is epoch<<1 | serving. stop bumps the epoch, so a seed that began before a
	// connection was lost cannot start serving after it (see start).
	state atomic.Uint64

	mu    sync.RWMutex
	nodes map[string]*node
}

// node is one ZooKeeper node as last read, with the state of the watches on it.
type node struct {
	data string
	kids []string // names, as the server listed them (under "/" with "zookeeper")

	dataArmed, kidsArmed bool // the watch is set and has not fired since (owned by the watch loop)
}

// isKey reports whether a node counts as a key (as readTree decides: no children, or data).
func (n *node) isKey() bool { return len(n.kids) == 0 || n.data != "" }

func newMirror(roots []string, sess *session) *mirror {
	return &mirror{roots: roots, sess: sess, nodes: map[string]*node{}}
}

// covers reports whether the cleaned prefix p lies at or under one of the roots.
// ZooKeeper's own /zookeeper subtree is never mirrored under "/".
func (m *mirror) covers(p string) bool {
	for _, r := range m.roots {
		if backends.UnderPrefix(p, r) {
			return r != "/" || !backends.UnderPrefix(p, "/zookeeper")
		}
	}
	return false
}

func (m *mirror) serving() bool { return m.state.Load()&1 == 1 }

// epoch is taken before the subtrees are read; start serves them unless stop ran since.
func (m *mirror) epoch() uint64 { return m.state.Load() >> 1 }

func (m *mirror) start(epoch uint64) bool { return m.state.CompareAndSwap(epoch<<1, epoch<<1|1) }

// stop ends serving at once; it is safe from any goroutine.
func (m *mirror) stop() {
	for {
		old := m.state.Load()
		if m.state.CompareAndSwap(old, (old>>1+1)<<1) {
			return
		}
	}
}

func (m *mirror) usable() bool { return m.serving() && m.sess.live(mirrorFresh) }

// collect adds the keys at or under p to out. It reports false if the mirror stopped serving
// meanwhile (out may then hold some keys: the caller drops it).
func (m *mirror) collect(p string, out map[string]string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.serving() {
		return false
	}
	stack := []string{p}
	for len(stack) > 0 {
		q := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := m.nodes[q]
		if n == nil {
			continue
		}
		if n.isKey() {
			out[q] = n.data
		}
		stack = append(stack, childPaths(q, n.kids)...)
	}
	return m.serving()
}

func (m *mirror) has(p string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.nodes[p] != nil
}

// replace swaps in a freshly read set of nodes.
func (m *mirror) replace(nodes map[string]*node) {
	m.mu.Lock()
	m.nodes = nodes
	m.mu.Unlock()
}

func (m *mirror) size() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.nodes)
}

// disarm notes that a watch on p fired: it must be set again.
func (m *mirror) disarm(p string, data, kids bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := m.nodes[p]; n != nil {
		n.dataArmed = n.dataArmed && !data
		n.kidsArmed = n.kidsArmed && !kids
	}
}

// setData records p's data as just read with its watch set.
func (m *mirror) setData(p string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := m.nodes[p]; n != nil {
		n.data, n.dataArmed = string(data), true
	}
}

// setKids records p's children as just read with the watch set, drops the subtrees of
// children that went away, and returns the paths of children the mirror does not hold.
func (m *mirror) setKids(p string, kids []string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.nodes[p]
	if n == nil {
		return nil
	}
	m.dropGoneLocked(p, n.kids, kids)
	n.kids, n.kidsArmed = kids, true
	return m.missingLocked(p, kids)
}

// put stores a node just read (data and children, watches set) and returns the paths of its
// children the mirror does not hold.
func (m *mirror) put(p string, n *node) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.nodes[p]; old != nil {
		m.dropGoneLocked(p, old.kids, n.kids)
	}
	m.nodes[p] = n
	return m.missingLocked(p, n.kids)
}

// remove drops p and its subtree, and p from its parent's children.
func (m *mirror) remove(p string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(p)
	if p == "/" {
		return
	}
	parent, name := splitPath(p)
	if pn := m.nodes[parent]; pn != nil {
		kids := make([]string, 0, len(pn.kids))
		for _, k := range pn.kids {
			if k != name {
				kids = append(kids, k)
			}
		}
		pn.kids = kids
	}
}

func (m *mirror) removeLocked(p string) {
	stack := []string{p}
	for len(stack) > 0 {
		q := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n := m.nodes[q]; n != nil {
			delete(m.nodes, q)
			stack = append(stack, childPaths(q, n.kids)...)
		}
	}
}

func (m *mirror) dropGoneLocked(p string, before, now []string) {
	if len(before) == 0 {
		return
	}
	keep := make(map[string]bool, len(now))
	for _, k := range now {
		keep[k] = true
	}
	for _, k := range before {
		if !keep[k] {
			m.removeLocked(joinPath(p, k))
		}
	}
}

func (m *mirror) missingLocked(p string, kids []string) []string {
	var out []string
	for _, k := range childPaths(p, kids) {
		if m.nodes[k] == nil {
			out = append(out, k)
		}
	}
	return out
}

// joinPath is the path of the child name of parent.
func joinPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// splitPath splits "/a/b" into "/a" and "b", "/a" into "/" and "a".
func splitPath(p string) (parent, name string) {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// addMirror makes m available to Get; dropMirror takes it away.
func (c *Client) addMirror(m *mirror) { c.mirrors.Add(m) }

func (c *Client) dropMirror(m *mirror) {
	m.stop()
	c.mirrors.Remove(m)
}

// fromMirrors answers Get from the mirrors of live watches when one that is serving covers
// each prefix. ok is false when Get must read the server.
func (c *Client) fromMirrors(prefixes []string) (kv map[string]string, ok bool) {
	list := c.mirrors.Load()
	if len(list) == 0 {
		return nil, false
	}
	ps := backends.Dedupe(prefixes)
	use := make([]*mirror, len(ps))
	checked := map[*mirror]bool{}
	for i, p := range ps {
		for _, m := range list {
			if !m.covers(p) {
				continue
			}
			good, seen := checked[m]
			if !seen {
				good = m.usable()
				checked[m] = good
			}
			if good {
				use[i] = m
				break
			}
		}
		if use[i] == nil {
			return nil, false
		}
	}
	out := make(map[string]string)
	for i, p := range ps {
		if !use[i].collect(p, out) {
			return nil, false
		}
	}
	return out, true
}
