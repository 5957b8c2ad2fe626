package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
