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

// snapshot serves the Gets of several resources from one read of the union of their prefixes:
// -onetime with 50 resources reads the store once, not 50 times (on Redis each read is a SCAN
// of the whole keyspace), and every resource renders from the same revision. A Get for a
// prefix the snapshot does not cover goes to the backend.
type snapshot struct {
	backends.Backend
	roots []string          // deduplicated prefixes that were read
	kv    map[string]string // what they hold
	keys  []string          // kv's keys, sorted
	err   error             // the read's error, served to every Get it covers
}

var _ backends.Backend = (*snapshot)(nil)

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
	kv, err := b.Get(ctx, roots)
	if err != nil {
		if errors.Is(err, backends.ErrUnavailable) || ctx.Err() != nil {
			return &snapshot{Backend: b, roots: roots, err: err}
		}
		return nil
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return &snapshot{Backend: b, roots: roots, kv: kv, keys: keys}
}

// Get returns the snapshot's keys at or under prefixes, or asks the backend for prefixes it
// does not cover.
func (s *snapshot) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	ps := backends.Dedupe(prefixes)
	for _, p := range ps {
		if !s.covers(p) {
			return s.Backend.Get(ctx, prefixes)
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	if slices.Equal(ps, s.roots) {
		return s.kv, nil // callers only read it
	}
	n := 0
	subs := make([][]string, len(ps))
	for i, p := range ps {
		subs[i] = s.below(p)
		n += len(subs[i]) + 1
	}
	out := make(map[string]string, n)
	for i, p := range ps {
		if v, ok := s.kv[p]; ok {
			out[p] = v
		}
		for _, k := range subs[i] {
			out[k] = s.kv[k]
		}
	}
	return out, nil
}

func (s *snapshot) covers(p string) bool {
	for _, r := range s.roots {
		if backends.UnderPrefix(p, r) {
			return true
		}
	}
	return false
}

// below returns the sorted keys that lie below p: the run of keys starting with p+"/" (every
// key starts with '/', so for the root that is all of them).
func (s *snapshot) below(p string) []string {
	if p == "/" {
		return s.keys
	}
	sub := p + "/"
	lo := sort.SearchStrings(s.keys, sub)
	hi := lo
	for hi < len(s.keys) && strings.HasPrefix(s.keys[hi], sub) {
		hi++
	}
	return s.keys[lo:hi]
}
