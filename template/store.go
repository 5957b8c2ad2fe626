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

// store is one render's read-only view of the KV snapshot with confd's memkv semantics. It is
// made from a map (get, getv and exists use it directly; the sorted keys that gets, getvs, ls
// and lsdir need are built lazily, once per render) or from keys sorted already (no map: point
// lookups search them). Answers of gets, getvs, ls and lsdir are memoized per argument. A
// store is used by one render (one goroutine) at a time.
type store struct {
	m map[string]string // nil when the store was made from sorted keys

	keys     []string   // all keys, sorted (lazy, or given)
	values   []string   // values[i] is the value of keys[i]
	next     int        // with sorted keys and no map: the index after the last key found
	dirs     []dirEntry // all keys sorted by (path.Dir(key), key) when keys are not (lazy)
	dirsDone bool       // indexDirs ran
	clean    bool       // every key is path.Clean(key), or that plus "/" (set by indexDirs)

	memoGets  map[string]KVPairs // answers that are not one run of keys
	memoRuns  map[string][2]int  // answers that are keys[lo:hi]
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

// newSortedStore makes a store of sorted keys without duplicates and their values. It builds
// no map: point lookups search the keys, trying the key after the last one found first
// (templates mostly look keys up in order, as ls then getv does).
func newSortedStore(keys, values []string) *store {
	if keys == nil {
		keys, values = []string{}, []string{}
	}
	return &store{keys: keys, values: values}
}

// lookup returns the value of key and whether it is stored.
func (s *store) lookup(key string) (string, bool) {
	if s.m != nil {
		v, ok := s.m[key]
		return v, ok
	}
	ks := s.keys
	if i := s.next; i < len(ks) && ks[i] == key {
		s.next = i + 1
		return s.values[i], true
	}
	i, ok := slices.BinarySearch(ks, key)
	if !ok {
		return "", false
	}
	s.next = i + 1
	return s.values[i], true
}

// size returns the number of keys.
func (s *store) size() int {
	if s.m != nil {
		return len(s.m)
	}
	return len(s.keys)
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

// sortedKeys returns every key, sorted (values[i] is the value of keys[i]): gets, ls and lsdir
// walk them without a map lookup per key.
func (s *store) sortedKeys() []string {
	if s.keys == nil {
		s.keys = make([]string, 0, len(s.m))
		for k := range s.m {
			s.keys = append(s.keys, k)
		}
		slices.Sort(s.keys)
		s.values = make([]string, len(s.keys))
		for i, k := range s.keys {
			s.values[i] = s.m[k]
		}
	}
	return s.keys
}

// indexDirs prepares the (path.Dir(key), key) order that ls and lsdir walk. When the keys in
// key order are in that order already (every key has the same depth, as in most trees) the
// sorted pairs are the index and each entry's dir is computed when it is read; otherwise the
// entries are built and sorted once.
func (s *store) indexDirs() {
	if s.dirsDone {
		return
	}
	s.dirsDone = true
	keys := s.sortedKeys()
	s.clean = true
	inOrder := true
	prev := ""
	for _, k := range keys {
		dir, clean := dirOf(k)
		s.clean = s.clean && clean
		inOrder = inOrder && prev <= dir
		prev = dir
	}
	if inOrder {
		return
	}
	s.dirs = make([]dirEntry, 0, len(keys))
	for _, k := range keys {
		dir, _ := dirOf(k)
		s.dirs = append(s.dirs, dirEntry{dir: dir, key: k})
	}
	slices.SortStableFunc(s.dirs, func(a, b dirEntry) int { return strings.Compare(a.dir, b.dir) })
}

// dirAt returns entry i of the dir order (see indexDirs).
func (s *store) dirAt(i int) dirEntry {
	if s.dirs != nil {
		return s.dirs[i]
	}
	k := s.keys[i]
	dir, _ := dirOf(k)
	return dirEntry{dir: dir, key: k}
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

// prefixRange returns the index range [lo, hi) of the sorted keys that start with prefix.
func prefixRange(sorted []string, prefix string) (int, int) {
	lo := sort.SearchStrings(sorted, prefix)
	hi := lo
	for hi < len(sorted) && strings.HasPrefix(sorted[hi], prefix) {
		hi++
	}
	return lo, hi
}

// gets returns the pairs whose keys match pattern (path.Match: '*' never crosses '/'), sorted
// by key; none is an empty list. A malformed pattern is an error when the store is not empty,
// as in memkv. Every answer is a new list: the caller may change it.
func (s *store) gets(pattern string) (KVPairs, error) {
	if r, ok := s.memoRuns[pattern]; ok {
		return s.pairsOf(r[0], r[1]), nil
	}
	if r, ok := s.memoGets[pattern]; ok {
		return slices.Clone(r), nil
	}
	if s.size() == 0 {
		return make(KVPairs, 0), nil
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	lo, hi, ks := s.match(pattern)
	if ks == nil {
		if s.memoRuns == nil {
			s.memoRuns = map[string][2]int{}
		}
		s.memoRuns[pattern] = [2]int{lo, hi}
		return s.pairsOf(lo, hi), nil
	}
	if s.memoGets == nil {
		s.memoGets = map[string]KVPairs{}
	}
	s.memoGets[pattern] = ks
	return slices.Clone(ks), nil
}

// pairsOf returns the pairs of keys[lo:hi] in a new list.
func (s *store) pairsOf(lo, hi int) KVPairs {
	ks := make(KVPairs, hi-lo)
	for i := range ks {
		ks[i] = KVPair{Key: s.keys[lo+i], Value: s.values[lo+i]}
	}
	return ks
}

// match finds the sorted keys that match the (valid) pattern. When they are one run of the
// sorted keys (as with "/app/*/*" over a uniform tree) it returns that run as [lo, hi) and a
// nil list; otherwise the pairs.
func (s *store) match(pattern string) (int, int, KVPairs) {
	suffix := literalSuffix(pattern)
	keys := s.sortedKeys()
	plo, phi := prefixRange(keys, literalPrefix(pattern))
	first, last := -1, -1
	var ks KVPairs // built only once the matches stop being one run
	for i := plo; i < phi; i++ {
		k := keys[i]
		if !strings.HasSuffix(k, suffix) {
			continue
		}
		if ok, _ := path.Match(pattern, k); !ok {
			continue
		}
		switch {
		case first < 0:
			first = i
		case ks == nil && i != last+1:
			ks = append(make(KVPairs, 0, 2*(last+1-first)+1), s.pairsOf(first, last+1)...)
		}
		if ks != nil {
			ks = append(ks, KVPair{Key: k, Value: s.values[i]})
		}
		last = i
	}
	if first < 0 {
		return 0, 0, nil
	}
	return first, last + 1, ks
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
	s.indexDirs()
	n := len(s.keys)
	c := path.Clean(p)
	find := func(x string, from int) int {
		return from + sort.Search(n-from, func(i int) bool { return s.dirAt(from+i).dir >= x })
	}
	i := find(c, 0)
	for ; i < n; i++ {
		e := s.dirAt(i)
		if e.dir != c {
			break
		}
		f(e)
	}
	sub := c + "/"
	canJump := s.clean && (p == c || p == sub)
	for i = find(sub, i); i < n; {
		e := s.dirAt(i)
		if !strings.HasPrefix(e.dir, sub) {
			break
		}
		name := f(e)
		if canJump && name != "" && strings.HasPrefix(e.dir, sub+name+"/") {
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
