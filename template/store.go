package template

import (
	"path"
	"slices"
	"sort"
	"strings"
)

// KVPair is one key and its value, as the store functions `get` and `gets` return it. It prints
// as confd's memkv.KVPair does ({/key value}).
type KVPair struct {
	Key   string
	Value string
}

// KVPairs is a list of pairs, sorted by key when `gets` returns it.
type KVPairs []KVPair

func (ks KVPairs) Len() int           { return len(ks) }
func (ks KVPairs) Less(i, j int) bool { return ks[i].Key < ks[j].Key }
func (ks KVPairs) Swap(i, j int)      { ks[i], ks[j] = ks[j], ks[i] }

// store is one render's read-only view of the KV snapshot with confd's memkv semantics.
// get, getv and exists use the map directly; the sorted indexes that gets, getvs, ls and lsdir
// need are built lazily, once per render, and their answers are memoized per argument. A store
// is used by one render (one goroutine) at a time.
type store struct {
	m map[string]string // nil when the store was made from sorted pairs

	pairs KVPairs    // all pairs, sorted by key (lazy, or given)
	next  int        // with sorted pairs and no map: the index after the last key found
	dirs  []dirEntry // all keys sorted by (path.Dir(key), key) (lazy)
	clean bool       // every key is path.Clean(key), or that plus "/" (set with dirs)

	memoGets  map[string]KVPairs
	memoGetvs map[string][]string
	memoLs    map[string][]string
	memoLsdir map[string][]string
}

type dirEntry struct {
	dir string // path.Dir(key)
	key string
}

func newStore(m map[string]string) *store {
	if m == nil {
		m = map[string]string{}
	}
	return &store{m: m}
}

// newSortedStore makes a store of pairs sorted by key, without duplicates. It builds no map:
// point lookups search the pairs, trying the pair after the last one found first (templates
// mostly look keys up in order, as ls then getv does).
func newSortedStore(pairs KVPairs) *store {
	if pairs == nil {
		pairs = KVPairs{}
	}
	return &store{pairs: pairs}
}

// lookup returns the value of key and whether it is stored.
func (s *store) lookup(key string) (string, bool) {
	if s.m != nil {
		v, ok := s.m[key]
		return v, ok
	}
	ps := s.pairs
	if i := s.next; i < len(ps) && ps[i].Key == key {
		s.next = i + 1
		return ps[i].Value, true
	}
	i, ok := slices.BinarySearchFunc(ps, key, func(p KVPair, k string) int { return strings.Compare(p.Key, k) })
	if !ok {
		return "", false
	}
	s.next = i + 1
	return ps[i].Value, true
}

// size returns the number of keys.
func (s *store) size() int {
	if s.m != nil {
		return len(s.m)
	}
	return len(s.pairs)
}

// get returns the pair stored under key, or a *KeyError wrapping ErrKeyNotExist.
func (s *store) get(key string) (KVPair, error) {
	v, ok := s.lookup(key)
	if !ok {
		return KVPair{}, &KeyError{Key: key, Err: ErrKeyNotExist}
	}
	return KVPair{Key: key, Value: v}, nil
}

// getv returns the value of key; for a missing key the first default if given, else the
// error. An empty value is a value: the default does not apply to it.
func (s *store) getv(key string, def ...string) (string, error) {
	v, ok := s.lookup(key)
	if !ok {
		if len(def) > 0 {
			return def[0], nil
		}
		return "", &KeyError{Key: key, Err: ErrKeyNotExist}
	}
	return v, nil
}

// exists says whether key itself is stored (a directory that is not a key is false).
func (s *store) exists(key string) bool {
	_, ok := s.lookup(key)
	return ok
}

// sortedPairs returns every pair, sorted by key: gets walks it without a map lookup per key.
func (s *store) sortedPairs() KVPairs {
	if s.pairs == nil {
		s.pairs = make(KVPairs, 0, len(s.m))
		for k, v := range s.m {
			s.pairs = append(s.pairs, KVPair{Key: k, Value: v})
		}
		slices.SortFunc(s.pairs, func(a, b KVPair) int { return strings.Compare(a.Key, b.Key) })
	}
	return s.pairs
}

func (s *store) dirIndex() []dirEntry {
	if s.dirs == nil {
		s.dirs = make([]dirEntry, 0, s.size())
		s.clean = true
		for _, kv := range s.sortedPairs() {
			dir, clean := dirOf(kv.Key)
			s.dirs = append(s.dirs, dirEntry{dir: dir, key: kv.Key})
			s.clean = s.clean && clean
		}
		byDir := func(a, b dirEntry) int { return strings.Compare(a.dir, b.dir) }
		if !slices.IsSortedFunc(s.dirs, byDir) { // sorted already when every key has the same depth
			slices.SortStableFunc(s.dirs, byDir)
		}
	}
	return s.dirs
}

// dirOf returns path.Dir(k) and whether k is clean: path.Clean(k) is k, or k without its
// trailing '/'. Rooted keys without empty, "." or ".." elements (nearly all of them) take a
// fast path that neither scans twice nor cleans.
func dirOf(k string) (string, bool) {
	if fastClean(k) {
		i := strings.LastIndexByte(k, '/')
		if i == 0 {
			return "/", true
		}
		return k[:i], true
	}
	c := path.Clean(k)
	return path.Dir(k), k == c || k == c+"/"
}

// fastClean reports whether k is "/" followed by '/'-separated elements none of which is
// empty, "." or "..", with no trailing '/': then path.Clean(k) == k.
func fastClean(k string) bool {
	if len(k) < 2 || k[0] != '/' || k[len(k)-1] == '/' {
		return false
	}
	for i := 0; i < len(k); {
		j := i + 1
		for j < len(k) && k[j] != '/' {
			j++
		}
		if e := k[i+1 : j]; e == "" || e == "." || e == ".." {
			return false
		}
		i = j
	}
	return true
}

// literalPrefix is the part of a path.Match pattern before its first special character: every
// key the pattern matches starts with it.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// literalSuffix is the part of a path.Match pattern after its last '*' or '?': every key the
// pattern matches ends with it. Patterns with classes or escapes give "" (no filter).
func literalSuffix(pattern string) string {
	if strings.ContainsAny(pattern, `[\`) {
		return ""
	}
	return pattern[strings.LastIndexAny(pattern, "*?")+1:]
}

// prefixRange returns the sorted pairs whose keys start with prefix.
func prefixRange(sorted KVPairs, prefix string) KVPairs {
	lo := sort.Search(len(sorted), func(i int) bool { return sorted[i].Key >= prefix })
	hi := lo
	for hi < len(sorted) && strings.HasPrefix(sorted[hi].Key, prefix) {
		hi++
	}
	return sorted[lo:hi]
}

// gets returns the pairs whose keys match pattern (path.Match: '*' never crosses '/'), sorted
// by key; none is an empty list. A malformed pattern is an error when the store is not empty,
// as in memkv.
func (s *store) gets(pattern string) (KVPairs, error) {
	if r, ok := s.memoGets[pattern]; ok {
		return slices.Clone(r), nil
	}
	ks := make(KVPairs, 0)
	if s.size() > 0 {
		if _, err := path.Match(pattern, ""); err != nil {
			return nil, err
		}
		ks = s.match(pattern)
	}
	if s.memoGets == nil {
		s.memoGets = map[string]KVPairs{}
	}
	s.memoGets[pattern] = ks // never handed out itself: it may share s.pairs' array
	return slices.Clone(ks), nil
}

// match returns the sorted pairs whose keys match the (valid) pattern. When they are one run
// of the sorted pairs (as with "/app/*/*" over a uniform tree) it returns that run without
// copying it; callers clone it before handing it out.
func (s *store) match(pattern string) KVPairs {
	suffix := literalSuffix(pattern)
	rng := prefixRange(s.sortedPairs(), literalPrefix(pattern))
	first, last := -1, -1
	var ks KVPairs // built only once the matches stop being one run
	for i, kv := range rng {
		if !strings.HasSuffix(kv.Key, suffix) {
			continue
		}
		if ok, _ := path.Match(pattern, kv.Key); !ok {
			continue
		}
		switch {
		case first < 0:
			first = i
		case ks == nil && i != last+1:
			ks = append(make(KVPairs, 0, 2*(last+1-first)+1), rng[first:last+1]...)
		}
		if ks != nil {
			ks = append(ks, kv)
		}
		last = i
	}
	switch {
	case first < 0:
		return make(KVPairs, 0)
	case ks == nil:
		return rng[first : last+1 : last+1]
	}
	return ks
}

// getvs returns the values of the keys matching pattern, sorted by value (not by key).
func (s *store) getvs(pattern string) ([]string, error) {
	if r, ok := s.memoGetvs[pattern]; ok {
		return slices.Clone(r), nil
	}
	ks, err := s.gets(pattern)
	if err != nil {
		return make([]string, 0), err
	}
	vs := make([]string, 0, len(ks))
	for _, kv := range ks {
		vs = append(vs, kv.Value)
	}
	sort.Strings(vs)
	if s.memoGetvs == nil {
		s.memoGetvs = map[string][]string{}
	}
	s.memoGetvs[pattern] = vs
	return slices.Clone(vs), nil
}

// eachUnder calls f for the index entries whose directory is clean(p) or lies below it, which
// is memkv's test "the terms of path.Dir(key) start with the terms of path.Clean(p)". f
// returns the name it took from the entry ("" for none). When the keys are clean and p is
// clean(p) or clean(p)+"/", every entry of the subdirectory c/name/… gives that same name, so
// eachUnder jumps over the rest of it: ls and lsdir of a big tree cost one step per child,
// not per descendant.
func (s *store) eachUnder(p string, f func(e dirEntry) string) {
	dirs := s.dirIndex()
	c := path.Clean(p)
	find := func(x string, from int) int {
		return from + sort.Search(len(dirs)-from, func(i int) bool { return dirs[from+i].dir >= x })
	}
	i := find(c, 0)
	for ; i < len(dirs) && dirs[i].dir == c; i++ {
		f(dirs[i])
	}
	sub := c + "/"
	canJump := s.clean && (p == c || p == sub)
	for i = find(sub, i); i < len(dirs) && strings.HasPrefix(dirs[i].dir, sub); {
		name := f(dirs[i])
		if canJump && name != "" && strings.HasPrefix(dirs[i].dir, sub+name+"/") {
			// every dir in [sub+name+"/", sub+name+"0") starts with sub+name+"/"
			i = find(sub+name+"0", i)
			continue
		}
		i++
	}
}

// ls lists the sorted unique names of the immediate children of p, leaves and directories,
// with memkv's quirks: a leaf lists its own name, `ls "/"` lists only top-level leaves, and a
// missing path or a partial name gives an empty list.
func (s *store) ls(p string) []string {
	if r, ok := s.memoLs[p]; ok {
		return slices.Clone(r)
	}
	var names []string
	if _, ok := s.lookup(p); ok {
		names = append(names, path.Base(p))
	}
	s.eachUnder(p, func(e dirEntry) string {
		if e.key == p {
			return ""
		}
		name, _, _ := strings.Cut(stripKey(e.key, p), "/")
		names = appendName(names, name)
		return name
	})
	vs := sortedNames(names)
	if s.memoLs == nil {
		s.memoLs = map[string][]string{}
	}
	s.memoLs[p] = vs
	return slices.Clone(vs)
}

// lsdir lists the sorted unique names of the immediate children of p that have children.
// A leaf gives an empty list and so does `lsdir "/"`, as in memkv.
func (s *store) lsdir(p string) []string {
	if r, ok := s.memoLsdir[p]; ok {
		return slices.Clone(r)
	}
	var names []string
	sub := path.Clean(p) + "/"
	s.eachUnder(p, func(e dirEntry) string {
		if !strings.HasPrefix(e.key, p) || !strings.HasPrefix(e.dir, sub) {
			return ""
		}
		name, _, _ := strings.Cut(e.dir[len(sub):], "/")
		names = appendName(names, name)
		return name
	})
	vs := sortedNames(names)
	if s.memoLsdir == nil {
		s.memoLsdir = map[string][]string{}
	}
	s.memoLsdir[p] = vs
	return slices.Clone(vs)
}

func stripKey(key, prefix string) string {
	return strings.TrimPrefix(strings.TrimPrefix(key, prefix), "/")
}

// appendName appends name unless it repeats the last one (the index yields a child's name
// once per entry, in runs).
func appendName(names []string, name string) []string {
	if len(names) > 0 && names[len(names)-1] == name {
		return names
	}
	return append(names, name)
}

// sortedNames sorts names and drops duplicates; the result is never nil.
func sortedNames(names []string) []string {
	if !slices.IsSorted(names) {
		slices.Sort(names)
	}
	names = slices.Compact(names)
	if names == nil {
		names = make([]string, 0)
	}
	return names
}

func sortedSet(m map[string]bool) []string {
	vs := make([]string, 0, len(m))
	for k := range m {
		vs = append(vs, k)
	}
	sort.Strings(vs)
	return vs
}
