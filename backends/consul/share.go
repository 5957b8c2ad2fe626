package consul

import (
	"context"
	"errors"
	"net/http/httptrace"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/backends"
)

// Shared folder queries (issue 14). The runner calls Watch once per prefix, so 50 resources
// on /many/p00…/many/p49 would hold 50 blocking queries, each a connection to the agent and a
// watch on the servers. Instead, the live watches of one client whose prefixes have the same
// parent folder (/many) are members of one group, and while it costs little the group serves
// them all with ONE blocking query on the folder:
//
//   - A prefix alone in its folder, or the root, runs its own query as before. When a second
//     member joins, the group starts the folder query (the members' own queries end) and
//     judges every answer; a member that joins later is fed the latest answer at once.
//   - Each answer is cut into each member's part (exactly what its own query would return,
//     with the same fingerprint), fed to that member's tracker and mirror: a member signals
//     only when its own part changed, and Get serves it from the member's mirror as before.
//   - The folder costs little while its answer holds at most MergeMaxKeys entries and at most
//     2 × (the keys under the members' prefixes) + mergeSlack: a change anywhere in the folder
//     then moves at most that little data. Otherwise, or when the answer holds a key that does
//     not start with its path (see kvData.odd), or the agent left out keys the token may not
//     read (X-Consul-Results-Filtered-By-ACLs), or the token may not list the folder, the group
//     splits: every member runs its own query again, from index 0, and signals only if its
//     part changed. A split for cost is re-judged by one plain read of the folder after
//     mergeRetryMin, then after twice as long each time, up to mergeRetryMax.
//   - A group with fewer than two members splits; its last member ends it.
//
// A member's tracker is used by one goroutine at a time: its own loop while the group is
// split, the folder loop (under the group's lock, and only after the members' own loops
// returned) while it is merged. A folder loop that is no longer current touches nothing.

const (
	// MergeMaxKeys is the most entries a folder's answer may hold for its prefixes to share
	// one blocking query: every change under the folder moves that answer, and decoding and
	// cutting it costs about 1 µs a key (BenchmarkShareFeed), added to every change's latency.
	MergeMaxKeys = 512
	mergeSlack   = 64
)

// A split for cost is judged again after mergeRetryMin, doubling up to mergeRetryMax
// (variables for tests).
var (
	mergeRetryMin = time.Minute
	mergeRetryMax = time.Hour
)

// groupSet holds a client's groups by folder.
type groupSet struct {
	mu sync.Mutex
	m  map[string]*group
}

// group is the live watches on prefixes under one folder.
type group struct {
	c      *Client
	folder string
	ctx    context.Context // ends with the group
	end    context.CancelFunc
	loops  sync.WaitGroup // folder loops and probes

	mu      sync.Mutex
	members []*member
	merged  bool               // a folder loop feeds the members
	stop    context.CancelFunc // stops the current folder loop
	seq     int                // the current folder loop's number
	last    *folderAnswer      // its latest answer, while its query is in place
	retry   time.Duration      // the next wait before judging a costly folder again
	timer   *time.Timer        // the pending judgement of a costly folder
	dead    bool
}

// member is one watched prefix in a group.
type member struct {
	w       *kvWatch
	t       *tracker
	wake    chan struct{}      // one slot: the group split
	ownStop context.CancelFunc // ends the member's own loop
	ownDone chan struct{}      // closed when its latest own loop returned
	fed     bool               // the current folder loop took its tracker over
}

// folderAnswer is one answer of a folder query.
type folderAnswer struct {
	index uint64
	d     *kvData
	conn  *connRef
}

// watchShared runs the watch of w.prefix until ctx ends: on its own query while its group is
// split, fed by its group's folder query while merged.
func (c *Client) watchShared(ctx context.Context, w *kvWatch, t *tracker) {
	what := "kv " + w.prefix
	if w.prefix == "/" {
		c.run(ctx, what, w.query, t)
		return
	}
	g, m := c.groups.join(c, path.Dir(w.prefix), w, t)
	defer c.groups.leave(g, m)
	for {
		own, done := g.await(ctx, m)
		if own == nil {
			return
		}
		c.run(own, what, w.query, t)
		close(done)
	}
}

// join adds a member for w to the group of folder, creating the group if needed.
func (s *groupSet) join(c *Client, folder string, w *kvWatch, t *tracker) (*group, *member) {
	s.mu.Lock()
	g := s.m[folder]
	if g == nil {
		if s.m == nil {
			s.m = make(map[string]*group)
		}
		ctx, end := context.WithCancel(context.Background())
		g = &group{c: c, folder: folder, ctx: ctx, end: end, retry: mergeRetryMin}
		s.m[folder] = g
	}
	g.mu.Lock()
	s.mu.Unlock()
	defer g.mu.Unlock()
	m := &member{w: w, t: t, wake: make(chan struct{}, 1)}
	g.members = append(g.members, m)
	switch {
	case g.merged && g.last != nil:
		if g.feed(m, g.last) {
			backends.Notify(m.t.changed)
		}
	case !g.merged && g.timer == nil && len(g.members) >= 2:
		g.merge()
	}
	return g, m
}

// leave removes m; the last member ends the group and waits for its goroutines.
func (s *groupSet) leave(g *group, m *member) {
	s.mu.Lock()
	g.mu.Lock()
	g.members = slices.DeleteFunc(g.members, func(x *member) bool { return x == m })
	last := len(g.members) == 0
	if last {
		delete(s.m, g.folder)
		g.dead = true
		g.end()
		if g.timer != nil && g.timer.Stop() {
			g.loops.Done() // the judgement that will not run
		}
	}
	if g.merged && len(g.members) < 2 {
		g.split("fewer than two watches", false)
	}
	g.mu.Unlock()
	s.mu.Unlock()
	if last {
		g.loops.Wait()
	}
}

// await returns a context for m's own loop and the channel to close when that loop returned,
// once the group is split; nil when ctx ended first.
func (g *group) await(ctx context.Context, m *member) (context.Context, chan struct{}) {
	for {
		if ctx.Err() != nil {
			return nil, nil
		}
		g.mu.Lock()
		if !g.merged {
			own, stop := context.WithCancel(ctx)
			m.ownStop, m.ownDone = stop, make(chan struct{})
			done := m.ownDone
			g.mu.Unlock()
			return own, done
		}
		g.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-m.wake:
		}
	}
}

// merge ends the members' own loops and starts a folder loop that feeds them once those
// returned. Called with g.mu held.
func (g *group) merge() {
	g.merged = true
	g.seq++
	ctx, stop := context.WithCancel(g.ctx)
	g.stop = stop
	var owns []chan struct{}
	for _, m := range g.members {
		m.fed = false
		if m.ownStop != nil {
			m.ownStop()
		}
		if m.ownDone != nil {
			owns = append(owns, m.ownDone)
		}
	}
	g.c.cfg.Logger.Debug("consul watches share one blocking query on their folder",
		"backend", "consul", "folder", g.folder, "watches", len(g.members))
	l := &folderLoop{g: g, seq: g.seq}
	g.loops.Add(1)
	go func() {
		defer g.loops.Done()
		for _, d := range owns {
			<-d // the member's own loop has let go of its tracker
		}
		g.c.run(ctx, "kv folder "+g.folder, l.query, l)
	}()
}

// split ends the folder loop; the members run their own queries again, from index 0 so
// that each signals only if its part changed. costly: judge the folder again later. Called
// with g.mu held.
func (g *group) split(why string, costly bool) {
	g.merged = false
	g.seq++
	g.stop()
	g.last = nil
	for _, m := range g.members {
		if m.fed {
			m.t.lost(false)
			m.fed = false
		}
		backends.Notify(m.wake)
	}
	log := g.c.cfg.Logger.With("backend", "consul", "folder", g.folder, "reason", why)
	if !costly || g.dead {
		log.Debug("consul watches under one folder query on their own again")
		return
	}
	log.Info("consul watches under one folder query on their own: one query on the folder would cost more", "judged again in", g.retry)
	g.later()
}

// later judges a costly folder again after g.retry, with one plain read. Called with g.mu
// held.
func (g *group) later() {
	wait := g.retry
	g.retry = min(2*g.retry, mergeRetryMax)
	g.loops.Add(1)
	g.timer = time.AfterFunc(wait, func() {
		defer g.loops.Done()
		var why string
		ctx, cancel := context.WithTimeout(g.ctx, g.c.cfg.RequestTimeout)
		l, d, err := g.c.listData(ctx, g.folder, blocking{})
		cancel()
		g.mu.Lock()
		defer g.mu.Unlock()
		g.timer = nil
		if g.dead {
			return
		}
		if err == nil {
			why = g.cost(l, d)
		}
		switch {
		case err != nil || why != "":
			g.later()
		case len(g.members) >= 2 && !g.merged:
			g.retry = mergeRetryMin
			g.merge()
		}
	})
}

// cost says why one query on the folder would cost more than the members' own ("": it
// would not), from one answer of it.
func (g *group) cost(l listed, d *kvData) string {
	switch {
	case l.filtered:
		return "the token may not read every key in the folder"
	case d.odd:
		return "a key in the folder does not start with its path"
	case l.raw > MergeMaxKeys:
		return "the folder holds more than MergeMaxKeys keys"
	}
	var runs [][2]int
	for _, m := range g.members {
		r := d.span(m.w.prefix)
		runs = append(runs, r[0], r[1])
	}
	slices.SortFunc(runs, func(a, b [2]int) int { return a[0] - b[0] })
	n, end := 0, 0
	for _, r := range runs {
		lo := max(r[0], end)
		if r[1] > lo {
			n += r[1] - lo
			end = r[1]
		}
	}
	if l.raw > 2*n+mergeSlack {
		return "the folder holds more than twice the keys under the watched prefixes"
	}
	return ""
}

// feed hands m its part of a folder answer and reports whether m is to signal; the caller
// signals once every member has its part, so that a Get after any signal of an answer is
// served that answer for every member. Called with g.mu held.
func (g *group) feed(m *member, a *folderAnswer) bool {
	if !m.fed {
		m.t.lost(false) // its cursor counted another query's indexes
		m.fed = true
	}
	d := a.d.sub(m.w.prefix)
	m.w.pending = d
	if m.w.m != nil && a.conn != nil {
		m.w.m.conn.Store(a.conn)
	}
	_, signal := m.t.fold(a.index, d.fp)
	return signal
}

// connected points the mirrors of the members that folder loop seq feeds at the connection its
// query now waits on, as a watch's own query does (a mirror is served while that connection is
// open): recorded only with an answer, it named the connection of the query before, which the
// HTTP client may have closed since.
func (g *group) connected(seq int, ref *connRef) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seq != seq {
		return
	}
	for _, m := range g.members {
		if m.fed && m.w.m != nil {
			m.w.m.conn.Store(ref)
		}
	}
}

// folderLoop is one run of a group's folder query; only run's goroutine calls its methods.
type folderLoop struct {
	g       *group
	seq     int
	cur     cursor
	pending *folderAnswer
	conn    atomic.Pointer[connRef]
}

var _ target = (*folderLoop)(nil)

func (l *folderLoop) query(ctx context.Context, q *api.QueryOptions) (uint64, uint64, error) {
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			ref := &connRef{c: info.Conn}
			l.conn.Store(ref)
			l.g.connected(l.seq, ref)
		},
	})
	g := l.g
	ls, d, err := g.c.listData(ctx, g.folder, blocking{index: q.WaitIndex, wait: q.WaitTime})
	if err != nil {
		err = g.c.wrap("watch folder "+g.folder, err)
		if errors.Is(err, backends.ErrAuth) {
			g.mu.Lock()
			if g.seq == l.seq {
				g.split("the token may not list the folder", true)
			}
			g.mu.Unlock()
		}
		return 0, 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seq == l.seq {
		if why := g.cost(ls, d); why != "" {
			g.split(why, true)
		}
	}
	l.pending = &folderAnswer{index: ls.index, d: d, conn: l.conn.Load()}
	return ls.index, d.fp, nil
}

func (l *folderLoop) answer(index, fp uint64) uint64 {
	next, _ := l.cur.next(index, fp)
	l.cur = next
	g := l.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seq != l.seq {
		return next.index
	}
	a := l.pending
	var wake []*member
	for _, m := range g.members {
		if g.feed(m, a) {
			wake = append(wake, m)
		}
	}
	for _, m := range wake {
		backends.Notify(m.t.changed)
	}
	g.last = a
	if next.index == 0 {
		g.last = nil // reset: the next answer is at once
	}
	g.retry = mergeRetryMin
	return next.index
}

func (l *folderLoop) lost(failed bool) {
	l.cur.index = 0
	g := l.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seq != l.seq {
		return
	}
	g.last = nil
	for _, m := range g.members {
		m.fed = true
		m.t.lost(failed)
	}
}
