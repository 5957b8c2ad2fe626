package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
)

// TestSnapshotServesEachResourceItsKeys: several resources are served from one read, each
// with exactly the keys under its own prefixes (by path: /a never sees /a-b), and a prefix
// the snapshot does not cover goes to the backend.
func TestSnapshotServesEachResourceItsKeys(t *testing.T) {
	b := newMem()
	for _, k := range []string{"/a", "/a/x", "/a/y/z", "/a-b/y", "/b/z", "/c/w", "/d/q"} {
		b.set(k, "v"+k)
	}
	list := []*resource.Resource{res("a", "/a"), res("b", "/b", "/c/w"), res("none")}
	ctx := context.Background()
	snap := readSnapshot(ctx, b, list)
	if snap == nil {
		t.Fatal("no snapshot for two readers")
	}
	if b.gets != 1 {
		t.Fatalf("snapshot read the store %d times, want 1", b.gets)
	}
	for _, tc := range []struct {
		prefixes []string
		want     []string
	}{
		{[]string{"/a"}, []string{"/a", "/a/x", "/a/y/z"}},
		{[]string{"/a/*"}, []string{"/a", "/a/x", "/a/y/z"}},
		{[]string{"/a/y"}, []string{"/a/y/z"}},
		{[]string{"/b", "/c/w"}, []string{"/b/z", "/c/w"}},
		{[]string{"/a/nothing"}, nil},
	} {
		got, err := snap.Get(ctx, tc.prefixes)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, k := range tc.want {
			want[k] = "v" + k
		}
		if !maps.Equal(got, want) {
			t.Errorf("Get(%v) = %v, want %v", tc.prefixes, got, want)
		}
	}
	if b.gets != 1 {
		t.Fatalf("covered Gets read the store: %d reads", b.gets)
	}
	got, err := snap.Get(ctx, []string{"/d"})
	if err != nil || got["/d/q"] != "v/d/q" || b.gets != 2 {
		t.Fatalf("uncovered Get = %v, %v after %d reads; want the backend's answer", got, err, b.gets)
	}
	if readSnapshot(ctx, b, list[:1]) != nil {
		t.Fatal("a snapshot for one reader")
	}
}

type failing struct {
	*memBackend
	err error
}

func (f failing) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	if _, err := f.memBackend.Get(ctx, prefixes); err != nil {
		return nil, err
	}
	return nil, f.err
}

// TestSnapshotErrors: an unreachable store fails every resource from the one read; any other
// error (it may concern one prefix only) lets each resource read for itself.
func TestSnapshotErrors(t *testing.T) {
	list := []*resource.Resource{res("a", "/a"), res("b", "/b")}
	ctx := context.Background()
	down := failing{newMem(), fmt.Errorf("etcd x: get: %w", backends.ErrUnavailable)}
	snap := readSnapshot(ctx, down, list)
	if snap == nil {
		t.Fatal("no snapshot for an unreachable store")
	}
	if _, err := snap.Get(ctx, []string{"/a"}); !errors.Is(err, backends.ErrUnavailable) || down.gets != 1 {
		t.Fatalf("Get = %v after %d reads, want the shared ErrUnavailable after 1", err, down.gets)
	}
	denied := failing{newMem(), fmt.Errorf("etcd x: get: %w", backends.ErrAuth)}
	if snap := readSnapshot(ctx, denied, list); snap != nil {
		t.Fatal("snapshot kept after an auth error; want each resource to read for itself")
	}
}

// sortedMem is a memBackend that also reads sorted, as etcd does.
type sortedMem struct{ *memBackend }

func (s sortedMem) GetSorted(ctx context.Context, prefixes []string) (keys, values []string, err error) {
	kv, err := s.Get(ctx, prefixes)
	if err != nil {
		return nil, nil, err
	}
	keys = slices.Sorted(maps.Keys(kv))
	for _, k := range keys {
		values = append(values, kv[k])
	}
	return keys, values, nil
}

// TestSnapshotSorted: GetSorted serves each resource its keys sorted, from a snapshot read
// sorted or as a map; uncovered prefixes go to a backend that reads sorted, or are refused
// with errors.ErrUnsupported (the caller then uses Get). Get answers the same keys.
func TestSnapshotSorted(t *testing.T) {
	ctx := context.Background()
	list := []*resource.Resource{res("a", "/a"), res("b", "/b", "/c/w")}
	for _, sorted := range []bool{true, false} {
		m := newMem()
		for _, k := range []string{"/a", "/a/x", "/a/y/z", "/a-b/y", "/b/z", "/b-c", "/c/w", "/d/q"} {
			m.set(k, "v"+k)
		}
		var b backends.Backend = m
		if sorted {
			b = sortedMem{m}
		}
		snap := readSnapshot(ctx, b, list)
		if snap == nil || m.gets != 1 || (snap.kv == nil) != sorted {
			t.Fatalf("sorted=%v: snapshot %v after %d reads", sorted, snap, m.gets)
		}
		for _, tc := range []struct {
			prefixes []string
			want     []string
		}{
			{[]string{"/a"}, []string{"/a", "/a/x", "/a/y/z"}},
			{[]string{"/c/w", "/b"}, []string{"/b/z", "/c/w"}},
			{[]string{"/a/y", "/b", "/a"}, []string{"/a", "/a/x", "/a/y/z", "/b/z"}},
			{[]string{"/a/nothing"}, []string{}},
		} {
			keys, values, err := snap.GetSorted(ctx, tc.prefixes)
			if err != nil || !slices.Equal(keys, tc.want) || keys == nil {
				t.Fatalf("sorted=%v: GetSorted(%v) = %v, %v; want %v", sorted, tc.prefixes, keys, err, tc.want)
			}
			for i, k := range keys {
				if values[i] != "v"+k {
					t.Fatalf("sorted=%v: GetSorted(%v): %s = %q", sorted, tc.prefixes, k, values[i])
				}
			}
			kv, err := snap.Get(ctx, tc.prefixes)
			if err != nil || !slices.Equal(slices.Sorted(maps.Keys(kv)), tc.want) {
				t.Fatalf("sorted=%v: Get(%v) = %v, %v; want %v", sorted, tc.prefixes, kv, err, tc.want)
			}
		}
		if m.gets != 1 {
			t.Fatalf("sorted=%v: covered reads went to the store: %d reads", sorted, m.gets)
		}
		keys, _, err := snap.GetSorted(ctx, []string{"/d"})
		switch {
		case sorted && (err != nil || !slices.Equal(keys, []string{"/d/q"}) || m.gets != 2):
			t.Fatalf("uncovered GetSorted = %v, %v after %d reads; want the backend's answer", keys, err, m.gets)
		case !sorted && !errors.Is(err, errors.ErrUnsupported):
			t.Fatalf("uncovered GetSorted on a map backend = %v, %v; want ErrUnsupported", keys, err)
		}
	}
}

// pinMem is a memBackend with a view pinned to one revision, as etcd has (pinner); the view
// here is the backend itself, which counts the reads.
type pinMem struct {
	*memBackend
	pins int
}

func (p *pinMem) Pinned() backends.Backend { p.pins++; return p.memBackend }

// TestOnetimeReadsThroughPinnedView: with a store that has a pinned view, -onetime takes one
// view and each group of onetimeGroup resources reads one snapshot of its prefixes through it,
// each resource getting exactly its own keys.
func TestOnetimeReadsThroughPinnedView(t *testing.T) {
	b := &pinMem{memBackend: newMem()}
	var list []*resource.Resource
	for i := range 2*onetimeGroup + 3 {
		name := fmt.Sprintf("r%02d", i)
		b.set("/"+name+"/k", "v"+name)
		list = append(list, res(name, "/"+name))
	}
	b.set("/r00-other/k", "no")
	rc := newRecorder()
	r := testRunner(t, Config{Resources: list, Backend: b, Onetime: true}, rc)
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.pins != 1 || b.gets != 3 {
		t.Fatalf("%d views, %d reads; want 1 view and 3 reads (groups of %d of %d resources)", b.pins, b.gets, onetimeGroup, len(list))
	}
	for _, res := range list {
		k := "/" + res.Name + "/k"
		if rc.n(res.Name) != 1 || rc.value(res.Name, k) != "v"+res.Name || len(rc.last[res.Name]) != 1 {
			t.Fatalf("%s: %d syncs, got %v", res.Name, rc.n(res.Name), rc.last[res.Name])
		}
	}
}
