package consul

import (
	"encoding/binary"
	"hash/maphash"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconf/reconf/backends"
)

// The watch-fed mirror. A blocking query's answer already is what Get would read, so while a
// Watch is live on prefix P, each answer is kept (decoded exactly as Get decodes, sorted by
// key) and Get serves any prefix at or under P from it without a round trip. The rules:
//
//   - The mirror takes an answer before Watch signals for it: the Get that follows a signal
//     sees the change. An unchanged answer (same index, or the same content) keeps the data
//     and only renews the time.
//   - It is served only while the watch is healthy: the last query succeeded, the next one
//     is in flight or about to start, its connection is still open (a killed agent closes it:
//     on Linux the socket's TCP state is checked on every serve), and the agent was heard
//     from within Config.MirrorTTL: a frozen agent keeps its connections open, so past the
//     TTL Get asks it and fails. On a loopback agent any answer to this client counts (a
//     resource reading a quiet prefix beside a changed one is served too); on a remote one
//     only the watch's own answers count, as a connection there can die silently. A failed
//     query, an index that went backwards, or the end of Watch stop it at once; only a fresh
//     answer starts it again.
//   - Where several live watches cover a prefix (nested prefixes, or the same one twice),
//     the one with the highest index answers: any answer that has seen a write has an index
//     at least the write's, any that has not has a lower one. If that watch is not healthy,
//     Get asks the agent.
//   - Consul keys that do not start with their path ("app//db", "/app": Get cleans them to
//     "/app/db", "/app") are found by some lists and not by others; a mirror holding such a
//     key serves its own prefix only.
//   - Get's maps and GetSorted's slices are fresh copies; strings are shared (immutable).

// fpSeed seeds the fingerprints of answers (compared within one process only).
var fpSeed = maphash.MakeSeed()

// kvData is one decoded answer: what Get returns for the watched prefix, sorted by key.
type kvData struct {
	keys, values []string // values[i] belongs to keys[i]; keys unique and sorted
	// odd: some Consul key does not start with its cleaned path, so a list of a prefix
	// below the watched one may not return it although its path is under that prefix.
	odd bool
	fp  uint64 // fingerprint of keys and values
}

// newKVData builds what Get would return from the entries of one list, in the order the agent
// sent them (entries is reordered): for each path the last real key wins, and a folder entry
// alone reads as "".
func newKVData(entries []entry) *kvData {
	cmp := func(a, b entry) int { return strings.Compare(a.key, b.key) }
	if !slices.IsSortedFunc(entries, cmp) {
		slices.SortStableFunc(entries, cmp)
	}
	d := &kvData{keys: make([]string, 0, len(entries)), values: make([]string, 0, len(entries))}
	for i := 0; i < len(entries); {
		k, v := entries[i].key, ""
		for ; i < len(entries) && entries[i].key == k; i++ {
			if !entries[i].folder {
				v = entries[i].value
			}
			d.odd = d.odd || entries[i].odd
		}
		d.keys, d.values = append(d.keys, k), append(d.values, v)
	}
	d.fp = fingerprint(d.keys, d.values)
	return d
}

// fingerprint hashes keys and their values.
func fingerprint(keys, values []string) uint64 {
	var h maphash.Hash
	h.SetSeed(fpSeed)
	var n [8]byte
	for i, k := range keys {
		binary.LittleEndian.PutUint64(n[:], uint64(len(k)))
		_, _ = h.Write(n[:])
		_, _ = h.WriteString(k)
		binary.LittleEndian.PutUint64(n[:], uint64(len(values[i])))
		_, _ = h.Write(n[:])
		_, _ = h.WriteString(values[i])
	}
	return h.Sum64()
}

// sub is the part of d at or under q (cleaned): what a list of q alone returns when d has no
// odd key, with the same fingerprint.
func (d *kvData) sub(q string) *kvData {
	r := d.span(q)
	n := r[0][1] - r[0][0] + r[1][1] - r[1][0]
	s := &kvData{keys: make([]string, 0, n), values: make([]string, 0, n), odd: d.odd}
	for _, x := range r {
		s.keys = append(s.keys, d.keys[x[0]:x[1]]...)
		s.values = append(s.values, d.values[x[0]:x[1]]...)
	}
	s.fp = fingerprint(s.keys, s.values)
	return s
}

// span returns the index ranges [lo, hi) of the keys at or under q (cleaned): the key q
// itself, and the run of keys starting with q+"/" (for the root, every key).
func (d *kvData) span(q string) [2][2]int {
	var r [2][2]int
	if q == "/" {
		r[1] = [2]int{0, len(d.keys)}
		return r
	}
	if i, ok := slices.BinarySearch(d.keys, q); ok {
		r[0] = [2]int{i, i + 1}
	}
	sub := q + "/"
	lo := sort.SearchStrings(d.keys, sub)
	hi := lo + sort.Search(len(d.keys)-lo, func(i int) bool { return !strings.HasPrefix(d.keys[lo+i], sub) })
	r[1] = [2]int{lo, hi}
	return r
}

// view is what one mirror holds at a moment. Views are never changed once stored.
type view struct {
	index uint64    // the answer's X-Consul-Index (kept while not serving)
	at    time.Time // when the answer arrived
	data  *kvData   // nil: not serving
}

func (v *view) idx() uint64 {
	if v == nil {
		return 0
	}
	return v.index
}

func (v *view) serving() bool { return v != nil && v.data != nil }

// mirror is the answer of one live blocking query on prefix. The watch's goroutine writes
// it; Gets read it.
type mirror struct {
	prefix string
	mu     sync.Mutex // serializes writers
	closed bool
	cur    atomic.Pointer[view]
	conn   atomic.Pointer[connRef] // the connection of the latest query
}

type connRef struct{ c net.Conn }

// publish serves d as the answer with index, from now.
func (m *mirror) publish(index uint64, d *kvData) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.cur.Store(&view{index: index, at: time.Now(), data: d})
	}
}

// stop stops serving until the next publish, keeping the index so that this mirror still
// outranks watches that may not have seen what it saw.
func (m *mirror) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur.Store(&view{index: m.cur.Load().idx()})
}

// close stops serving for good.
func (m *mirror) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.cur.Store(&view{index: m.cur.Load().idx()})
}

func (m *mirror) setConn(c net.Conn) { m.conn.Store(&connRef{c: c}) }

// alive reports whether the connection of the latest query is still open at our end and
// not closed by the agent.
func (m *mirror) alive() bool {
	r := m.conn.Load()
	return r != nil && connAlive(r.c)
}

// mirrorSet holds the mirrors of a client's live watches.
type mirrorSet struct {
	list backends.COWList[*mirror]
}

func (s *mirrorSet) add(m *mirror)    { s.list.Add(m) }
func (s *mirrorSet) remove(m *mirror) { s.list.Remove(m) }

// pick returns the answer that may serve prefix q (cleaned), or nil: the covering mirror with
// the highest index, if it is healthy and the agent was heard from within ttl (by this
// mirror's answer, or at heard).
func pick(list []*mirror, q string, ttl time.Duration, now, heard time.Time) *kvData {
	var (
		best *mirror
		bv   *view
	)
	for _, m := range list {
		if !backends.UnderPrefix(q, m.prefix) {
			continue
		}
		v := m.cur.Load()
		if best == nil || v.idx() > bv.idx() || (v.idx() == bv.idx() && !bv.serving()) {
			best, bv = m, v
		}
	}
	switch {
	case !bv.serving():
		return nil
	case now.Sub(bv.at) > ttl && now.Sub(heard) > ttl:
		return nil
	case bv.data.odd && q != best.prefix:
		return nil
	case !best.alive():
		return nil
	}
	return bv.data
}

// part is the keys of one requested prefix in one answer.
type part struct {
	d    *kvData
	runs [2][2]int
}

// parts picks an answer for every root, or reports false if one has none. heard is when the
// agent last answered anything, or the zero time when only each watch's own answers count.
func (s *mirrorSet) parts(roots []string, ttl time.Duration, heard time.Time) ([]part, int, bool) {
	l := s.list.Load()
	if len(l) == 0 {
		return nil, 0, false
	}
	now := time.Now()
	out := make([]part, 0, len(roots))
	n := 0
	for _, q := range roots {
		d := pick(l, q, ttl, now, heard)
		if d == nil {
			return nil, 0, false
		}
		p := part{d: d, runs: d.span(q)}
		n += p.runs[0][1] - p.runs[0][0] + p.runs[1][1] - p.runs[1][0]
		out = append(out, p)
	}
	return out, n, true
}

// get is Get served from the mirrors, if they cover every root (deduplicated prefixes).
func (s *mirrorSet) get(roots []string, ttl time.Duration, heard time.Time) (map[string]string, bool) {
	parts, n, ok := s.parts(roots, ttl, heard)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, n)
	for _, p := range parts {
		for _, r := range p.runs {
			for i := r[0]; i < r[1]; i++ {
				out[p.d.keys[i]] = p.d.values[i]
			}
		}
	}
	return out, true
}

// getSorted is get with the keys sorted and the values in a parallel slice.
func (s *mirrorSet) getSorted(roots []string, ttl time.Duration, heard time.Time) (keys, values []string, ok bool) {
	parts, n, ok := s.parts(roots, ttl, heard)
	if !ok {
		return nil, nil, false
	}
	keys, values = make([]string, 0, n), make([]string, 0, n)
	for _, p := range parts {
		for _, r := range p.runs {
			keys = append(keys, p.d.keys[r[0]:r[1]]...)
			values = append(values, p.d.values[r[0]:r[1]]...)
		}
	}
	// Each part is sorted, but the keys of two prefixes can interleave ("/a-b" sorts between
	// "/a" and "/a/x").
	if len(parts) > 1 && !slices.IsSorted(keys) {
		sort.Sort(pairs{keys, values})
	}
	return keys, values, true
}

// pairs sorts keys with their values.
type pairs struct{ keys, values []string }

func (p pairs) Len() int           { return len(p.keys) }
func (p pairs) Less(i, j int) bool { return p.keys[i] < p.keys[j] }
func (p pairs) Swap(i, j int) {
	p.keys[i], p.keys[j] = p.keys[j], p.keys[i]
	p.values[i], p.values[j] = p.values[j], p.values[i]
}
