package etcd

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"

	"github.com/reconf/reconf/backends"
)

// mirror is an in-memory copy of every key at or under one watched prefix, kept by a running
// Watch from the events of its etcd watch, so that Get and GetSorted answer a change signal
// without another round trip. It is seeded by a read at revision rev and the watch starts at
// rev+1; each event is applied before the signal it causes. It serves reads only while the
// watch that feeds it is healthy: created, connected, not waiting for a progress answer and
// not rebuilding (Watch flips serving under mu, so once it is off no Get reads the mirror).
// A backend outage is then an error from the server read, never stale data, from the moment
// the client notices it: at once for a closed connection (Get also checks the connection's
// state itself), within about two progress intervals for a frozen server or a silent network.
type mirror struct {
	prefix string // cleaned

	// hold, when set (by Watch, before the mirror is published), is its stream's flag of an
	// unanswered progress request: the mirror does not serve while it is up.
	hold *atomic.Bool

	mu      sync.RWMutex
	serving bool
	// rev is the revision of the read or of the latest event applied: the keys and values are
	// the store's under prefix as of rev. Progress notifications do not move it (etcd before
	// 3.4.25 and 3.5.8 could send one ahead of events of that revision, see etcd-io/etcd#15220,
	// and events at or below rev are skipped as already held).
	rev    int64
	keys   []string // sorted
	values []string // values[i] is the value of keys[i]
}

// seed reads prefix p at revision rev (0: the latest) into a new mirror that does not serve
// yet. When rev was compacted (or lies past the store's, after a restore from a backup) it
// reads the latest revision instead and reports relisted: the events in between are gone and
// the caller signals once.
func (c *Client) seed(ctx context.Context, p string, rev int64) (m *mirror, relisted bool, err error) {
	keys, values, got, err := c.readSorted(ctx, p, rev)
	if rev != 0 && (errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrFutureRev)) {
		relisted = true
		keys, values, got, err = c.readSorted(ctx, p, 0)
	}
	if err != nil {
		return nil, false, classify(c.nodes, "watch: read "+p, err)
	}
	return &mirror{prefix: p, rev: got, keys: keys, values: values}, relisted, nil
}

// readSorted reads the keys at or under p at revision rev (0: the latest), sorted, and
// returns the revision read. Errors are etcd's, not yet classified.
func (c *Client) readSorted(ctx context.Context, p string, rev int64) (keys, values []string, got int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var sp sortedParts
	got, err = c.readAt(ctx, []string{p}, rev, sp.reset, sp.add)
	if err != nil {
		return nil, nil, 0, err
	}
	keys, values = sp.join()
	return keys, values, got, nil
}

// reset replaces the mirror's content with keys and values read at rev, unless the mirror is
// already past rev.
func (m *mirror) reset(keys, values []string, rev int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rev >= m.rev {
		m.keys, m.values, m.rev = keys, values, rev
	}
}

// setServing turns serving on or off; after it returns no Get reads a mirror turned off.
func (m *mirror) setServing(on bool) {
	m.mu.Lock()
	m.serving = on
	m.mu.Unlock()
}

// mergeMin is the number of events in one response from which apply merges them into the
// sorted keys in one pass (a big transaction on a big mirror) instead of one at a time.
const mergeMin = 16

// change is the last event of one key in a merged response.
type change struct {
	value string
	del   bool
}

// apply applies the events of one watch response, in order, skipping those the mirror
// already holds (revision at or below m.rev: a re-read may be ahead of the stream), and
// reports whether any applied event touched a key at or under the prefix (the watch's range
// is a string prefix: "/app" also sees "/apple", which the mirror ignores). The events of one
// revision (a transaction, a delete of a range) share it and come in one response.
func (m *mirror) apply(evs []*clientv3.Event) (changed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	held := m.rev
	var batch map[string]change
	if len(evs) >= mergeMin {
		batch = make(map[string]change, len(evs))
	}
	for _, ev := range evs {
		if ev.Kv.ModRevision <= held {
			continue
		}
		m.rev = max(m.rev, ev.Kv.ModRevision)
		k := string(ev.Kv.Key)
		if !backends.UnderPrefix(k, m.prefix) {
			continue
		}
		changed = true
		c := change{string(ev.Kv.Value), ev.Type == clientv3.EventTypeDelete}
		if batch != nil {
			batch[k] = c // the last event of a key wins
			continue
		}
		i, found := slices.BinarySearch(m.keys, k)
		switch {
		case c.del:
			if found {
				m.keys = slices.Delete(m.keys, i, i+1)
				m.values = slices.Delete(m.values, i, i+1)
			}
		case found:
			m.values[i] = c.value
		default:
			m.keys = slices.Insert(m.keys, i, k)
			m.values = slices.Insert(m.values, i, c.value)
		}
	}
	if len(batch) > 0 {
		m.merge(batch)
	}
	return changed
}

// merge applies the changes of batch to the sorted keys in one pass.
func (m *mirror) merge(batch map[string]change) {
	ks := slices.Sorted(maps.Keys(batch))
	keys := make([]string, 0, len(m.keys)+len(ks))
	values := make([]string, 0, len(m.keys)+len(ks))
	i := 0
	for _, k := range ks {
		for i < len(m.keys) && m.keys[i] < k {
			keys, values = append(keys, m.keys[i]), append(values, m.values[i])
			i++
		}
		if i < len(m.keys) && m.keys[i] == k {
			i++ // replaced or deleted
		}
		if c := batch[k]; !c.del {
			keys, values = append(keys, k), append(values, c.value)
		}
	}
	m.keys, m.values = append(keys, m.keys[i:]...), append(values, m.values[i:]...)
}

// read hands emit the runs of keys at or under p (cleaned, at or under m.prefix) with their
// values, under the read lock (emit must copy what it keeps), and returns the mirror's
// revision; ok is false when the mirror is not serving.
func (m *mirror) read(p string, emit func(keys, values []string)) (rev int64, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.serving || (m.hold != nil && m.hold.Load()) {
		return 0, false
	}
	if p == "/" { // every key of the mirror starts with '/'
		emit(m.keys, m.values)
		return m.rev, true
	}
	if i, found := slices.BinarySearch(m.keys, p); found {
		emit(m.keys[i:i+1], m.values[i:i+1])
	}
	// The keys below p are those in [p+"/", p+"0"): '0' follows '/'.
	lo := sort.SearchStrings(m.keys, p+"/")
	hi := lo + sort.SearchStrings(m.keys[lo:], p+"0")
	if hi > lo {
		emit(m.keys[lo:hi], m.values[lo:hi])
	}
	return m.rev, true
}

// addMirror makes m findable by Get (it serves once Watch turns it on).
func (c *Client) addMirror(m *mirror) { c.mirrors.Add(m) }

// dropMirror stops m serving and forgets it, releasing its memory.
func (c *Client) dropMirror(m *mirror) {
	m.setServing(false)
	c.mirrors.Remove(m)
}

// fromMirrors answers a read of ps (deduplicated) from serving mirrors: it hands emit every
// run of keys with its values and reports true, or reports false (emit may have been called;
// the caller discards what it got) when some prefix lies under no serving mirror, the
// connection is not ready or ctx is done: the caller then reads the server.
func (c *Client) fromMirrors(ctx context.Context, ps []string, emit func(keys, values []string)) bool {
	list := c.mirrors.Load()
	if len(list) == 0 || ctx.Err() != nil || !c.connReady() {
		return false
	}
	revs := make([]int64, len(ps))
	for i, p := range ps {
		ok := false
		for _, m := range list {
			if backends.UnderPrefix(p, m.prefix) {
				if revs[i], ok = m.read(p, emit); ok {
					break
				}
			}
		}
		if !ok {
			return false
		}
	}
	c.mu.Lock()
	for i, p := range ps {
		c.revs[p] = revs[i]
	}
	c.mu.Unlock()
	return true
}

// connReady reports whether the client's connection is up now. Watch learns of a lost
// connection a moment later; Get checks for itself so that it never answers from memory
// while the server is unreachable.
func (c *Client) connReady() bool {
	cc := c.cli.ActiveConnection()
	return cc != nil && cc.GetState() == connectivity.Ready
}
