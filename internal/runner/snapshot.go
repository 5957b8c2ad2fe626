package runner

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
)

// sortedGetter is a backend that returns its snapshot sorted by key, values in a parallel
// slice, without building a map (etcd; resource.Sync prefers it). An error wrapping
// errors.ErrUnsupported means it cannot after all.
type sortedGetter interface {
	GetSorted(ctx context.Context, prefixes []string) (keys, values []string, err error)
}

// pinner is a backend that reads through a view fixed at one revision of the store (etcd):
// -onetime reads groups of resources through the view, each group from a snapshot of its own
// prefixes, so the resources still render from one revision but only about two groups hold
// their keys at a time (one snapshot of every resource's keys is held until the last one has
// rendered).
type pinner interface {
	Pinned() backends.Backend
}

// snapshot serves the Gets of several resources from one read of the union of their prefixes:
// -onetime with 50 resources reads the store once, not 50 times (on Redis each read is a SCAN
// of the whole keyspace), and every resource renders from the same revision. A Get for a
// prefix the snapshot does not cover goes to the backend. The keys are held sorted, so each
// resource's part is a few runs of them (served as is by GetSorted).
type snapshot struct {
	backends.Backend
	roots  []string          // deduplicated prefixes that were read
	kv     map[string]string // what they hold, when the backend answered with a map (else nil)
	keys   []string          // the keys, sorted
	values []string          // values[i] is the value of keys[i]
	err    error             // the read's error, served to every Get it covers
}

var (
	_ backends.Backend = (*snapshot)(nil)
	_ sortedGetter     = (*snapshot)(nil)
)

// readSnapshot reads the union of the prefixes of list through b. It returns nil when sharing
// does not pay (fewer than two resources read keys) or when the read failed for a reason that
// may be one resource's alone (say, a permission on one prefix): each resource then reads for
// itself and reports its own error. A store that is unreachable fails every resource at once
// instead of once per resource.
func readSnapshot(ctx context.Context, b backends.Backend, list []*resource.Resource) *snapshot {
	var all []string
	readers := 0
	for _, res := range list {
		if ps := res.Prefixes(); len(ps) > 0 {
			readers++
			all = append(all, ps...)
		}
	}
	if readers < 2 {
		return nil
	}
	roots := backends.Dedupe(all)
	keep := func(err error) *snapshot {
		if errors.Is(err, backends.ErrUnavailable) || ctx.Err() != nil {
			return &snapshot{Backend: b, roots: roots, err: err}
		}
		return nil
	}
	if sg, ok := b.(sortedGetter); ok {
		keys, values, err := sg.GetSorted(ctx, roots)
		switch {
		case err == nil:
			return &snapshot{Backend: b, roots: roots, keys: keys, values: values}
		case !errors.Is(err, errors.ErrUnsupported):
			return keep(err)
		}
	}
	kv, err := b.Get(ctx, roots)
	if err != nil {
		return keep(err)
	}
	keys := sortedKeys(kv)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = kv[k]
	}
	return &snapshot{Backend: b, roots: roots, kv: kv, keys: keys, values: values}
}

// HoldsSecrets passes on what the backend says (backends.SecretHolder).
func (s *snapshot) HoldsSecrets() bool { return resource.HoldsSecrets(s.Backend) }

// Get returns the snapshot's keys at or under prefixes, or asks the backend for prefixes it
// does not cover.
func (s *snapshot) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	ps := backends.Dedupe(prefixes)
	if !s.coversAll(ps) {
		return s.Backend.Get(ctx, prefixes)
	}
	if s.err != nil {
		return nil, s.err
	}
	if s.kv != nil && slices.Equal(ps, s.roots) {
		return s.kv, nil // callers only read it
	}
	runs := s.runs(ps)
	n := 0
	for _, r := range runs {
		n += r[1] - r[0]
	}
	out := make(map[string]string, n)
	for _, r := range runs {
		for i := r[0]; i < r[1]; i++ {
			out[s.keys[i]] = s.values[i]
		}
	}
	return out, nil
}

// GetSorted is Get with the keys sorted and the values in a parallel slice. For prefixes it
// does not cover it asks a backend that can read sorted, else it answers
// errors.ErrUnsupported.
func (s *snapshot) GetSorted(ctx context.Context, prefixes []string) (keys, values []string, err error) {
	ps := backends.Dedupe(prefixes)
	if !s.coversAll(ps) {
		if sg, ok := s.Backend.(sortedGetter); ok {
			return sg.GetSorted(ctx, prefixes)
		}
		return nil, nil, errors.ErrUnsupported
	}
	if s.err != nil {
		return nil, nil, s.err
	}
	runs := s.runs(ps)
	if len(runs) == 1 { // callers only read it
		r := runs[0]
		return s.keys[r[0]:r[1]:r[1]], s.values[r[0]:r[1]:r[1]], nil
	}
	n := 0
	for _, r := range runs {
		n += r[1] - r[0]
	}
	keys, values = make([]string, 0, n), make([]string, 0, n)
	for _, r := range runs {
		keys = append(keys, s.keys[r[0]:r[1]]...)
		values = append(values, s.values[r[0]:r[1]]...)
	}
	return keys, values, nil
}

func (s *snapshot) coversAll(ps []string) bool {
	for _, p := range ps {
		if !s.covers(p) {
			return false
		}
	}
	return true
}

func (s *snapshot) covers(p string) bool {
	for _, r := range s.roots {
		if backends.UnderPrefix(p, r) {
			return true
		}
	}
	return false
}

// runs returns the index ranges [lo, hi) of the keys at or under the (deduplicated) prefixes
// ps, in key order and merged where adjacent: per prefix the key itself and the run of keys
// starting with p+"/" (every key starts with '/', so for the root that is all of them). The
// runs of different prefixes are disjoint.
func (s *snapshot) runs(ps []string) [][2]int {
	var runs [][2]int
	for _, p := range ps {
		if p == "/" {
			runs = append(runs, [2]int{0, len(s.keys)})
			continue
		}
		if i, ok := slices.BinarySearch(s.keys, p); ok {
			runs = append(runs, [2]int{i, i + 1})
		}
		sub := p + "/"
		lo := sort.SearchStrings(s.keys, sub)
		hi := lo
		for hi < len(s.keys) && strings.HasPrefix(s.keys[hi], sub) {
			hi++
		}
		if hi > lo {
			runs = append(runs, [2]int{lo, hi})
		}
	}
	slices.SortFunc(runs, func(a, b [2]int) int { return a[0] - b[0] })
	merged := runs[:0]
	for _, r := range runs {
		if n := len(merged); n > 0 && merged[n-1][1] == r[0] {
			merged[n-1][1] = r[1]
			continue
		}
		merged = append(merged, r)
	}
	return merged
}
