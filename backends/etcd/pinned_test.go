package etcd

import (
	"errors"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

// TestPinned: every read through a view after the first is at the first one's revision,
// while the client itself reads the latest; once that revision is compacted away the view
// reads the latest instead of failing.
func TestPinned(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	put(t, cli, "/pin/a/k", "1")
	put(t, cli, "/pin/b/k", "1")
	cl := newClient(t, testConfig(srv))
	v := cl.Pinned().(*pinned)
	if kv, err := v.Get(ctxT(t), []string{"/pin/a"}); err != nil || kv["/pin/a/k"] != "1" {
		t.Fatalf("first read: %v, %v", kv, err)
	}
	put(t, cli, "/pin/a/k", "2")
	put(t, cli, "/pin/b/k", "2")
	put(t, cli, "/pin/b/new", "2")
	keys, values, err := v.GetSorted(ctxT(t), []string{"/pin/b"})
	if err != nil || len(keys) != 1 || keys[0] != "/pin/b/k" || values[0] != "1" {
		t.Fatalf("pinned GetSorted(/pin/b) = %v %v, %v; want the first read's revision: [/pin/b/k] [1]", keys, values, err)
	}
	if kv, err := v.Get(ctxT(t), []string{"/pin/a", "/pin/b"}); err != nil || kv["/pin/a/k"] != "1" || len(kv) != 2 {
		t.Fatalf("pinned Get = %v, %v; want /pin/a/k=1 and /pin/b/k=1", kv, err)
	}
	if kv, err := cl.Get(ctxT(t), []string{"/pin/b"}); err != nil || kv["/pin/b/k"] != "2" || len(kv) != 2 {
		t.Fatalf("client Get = %v, %v; want the latest", kv, err)
	}
	last, err := cli.Get(ctxT(t), "/pin/b/new")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctxT(t), last.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if kv, err := v.Get(ctxT(t), []string{"/pin/b"}); err != nil || kv["/pin/b/k"] != "2" || len(kv) != 2 {
		t.Fatalf("pinned Get after compaction = %v, %v; want the latest", kv, err)
	}
}

// TestPinnedUnavailable: when the view's first read finds the store unavailable, later reads
// fail with that error without asking the store again.
func TestPinnedUnavailable(t *testing.T) {
	cl := newClient(t, Config{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 200 * time.Millisecond,
		RequestTimeout: 300 * time.Millisecond})
	v := cl.Pinned()
	if _, err := v.Get(ctxT(t), []string{"/a"}); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("first read: %v, want ErrUnavailable", err)
	}
	n := cl.serverGets.Load()
	for _, p := range []string{"/a", "/b"} {
		if _, _, err := v.(*pinned).GetSorted(ctxT(t), []string{p}); !errors.Is(err, backends.ErrUnavailable) {
			t.Fatalf("read of %s: %v, want ErrUnavailable", p, err)
		}
	}
	if cl.serverGets.Load() != n {
		t.Fatalf("later reads asked the store %d times", cl.serverGets.Load()-n)
	}
}
