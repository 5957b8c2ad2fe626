package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// tree is the test's model of the nodes it wrote: path → data.
type tree map[string]string

// keys is what Get(prefix) must return: the nodes at or under prefix with no children or
// with data.
func (m tree) keys(prefix string) map[string]string {
	out := map[string]string{}
	for p, v := range m {
		if !backends.UnderPrefix(p, prefix) {
			continue
		}
		if v != "" || !m.hasKids(p) {
			out[p] = v
		}
	}
	return out
}

func (m tree) hasKids(p string) bool {
	for q := range m {
		if strings.HasPrefix(q, p+"/") {
			return true
		}
	}
	return false
}

// put writes p = v with the store's client, creating missing parents without data.
func (m tree) put(t *testing.T, conn *zk.Conn, p, v string) {
	t.Helper()
	if _, ok := m[p]; ok {
		if _, err := conn.Set(p, []byte(v), -1); err != nil {
			t.Fatalf("set %s: %v", p, err)
		}
		m[p] = v
		return
	}
	parts := strings.Split(p, "/")[1:]
	for i := 1; i < len(parts); i++ {
		q := "/" + strings.Join(parts[:i], "/")
		if _, ok := m[q]; ok {
			continue
		}
		if _, err := conn.Create(q, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatalf("create %s: %v", q, err)
		}
		m[q] = ""
	}
	if _, err := conn.Create(p, []byte(v), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	m[p] = v
}

// del deletes p and its subtree, deepest first.
func (m tree) del(t *testing.T, conn *zk.Conn, p string) {
	t.Helper()
	var sub []string
	for q := range m {
		if backends.UnderPrefix(q, p) {
			sub = append(sub, q)
		}
	}
	slices.SortFunc(sub, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, q := range sub {
		if err := conn.Delete(q, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			t.Fatalf("delete %s: %v", q, err)
		}
		delete(m, q)
	}
}

// Random creates, sets and subtree deletes under the watched prefix and beside it: Get of the
// prefix and of prefixes under it, answered from the mirror, equals the model and a read of
// the server, while other goroutines Get all the time.
func TestMirrorRandomOps(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	model := tree{}
	model.put(t, st.conn, "/r/a/b", "start")
	model.put(t, st.conn, "/rx/k", "outside, same string prefix")
	w := startWatch(t, c, "/r")
	w.armed(t, st, "/r/ready")
	if v, ok := serverKV(t, c, "/r/ready")["/r/ready"]; ok { // armed wrote it
		model["/r/ready"] = v
	}

	// Readers: Get must never fail while the server is up, and what it returns is the
	// caller's to change.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				kv, err := c.Get(ctx, []string{"/r/a", "/r"})
				if err != nil && ctx.Err() == nil {
					t.Errorf("concurrent Get: %v", err)
					return
				}
				for k := range kv {
					kv[k] = "scribbled"
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	segs := []string{"a", "ab", "b", "ü", "ключ"}
	randPath := func() string {
		root := "/r"
		switch rng.IntN(10) {
		case 0:
			root = "/rx"
		case 1:
			root = "/other"
		}
		p := root
		for range rng.IntN(4) {
			p += "/" + segs[rng.IntN(len(segs))]
		}
		return p
	}
	values := []string{"", "v", "ü 值", "line\nbreak", strings.Repeat("x", 300)}
	check := func(after int) {
		t.Helper()
		want := model.keys("/r")
		if got := serverKV(t, c, "/r"); !equalKV(got, want) {
			t.Fatalf("after %d ops the server holds %s, the model %s", after, showKV(got), showKV(want))
		}
		testutil.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
			kv, read, err := getCounted(t, c, "/r")
			if err != nil || read || !equalKV(kv, want) {
				return fmt.Errorf("after %d ops: Get(/r) (server read %v, %v) = %s\nwant %s", after, read, err, showKV(kv), showKV(want))
			}
			return nil
		})
		for _, sub := range []string{"/r/a", "/r/ab", "/r/a/b", "/r/ü", "/r/a/ab/*", "/r/b/"} {
			mustMirror(t, c, fmt.Sprintf("after %d ops", after), model.keys(backends.CleanPrefix(sub)), sub)
		}
		both := model.keys("/r")
		maps.Copy(both, model.keys("/rx"))
		kv, read, err := getCounted(t, c, "/r", "/rx")
		if err != nil || !read || !equalKV(kv, both) {
			t.Errorf("after %d ops: Get(/r, /rx) = %s (server read %v, %v), want %s from the server", after, showKV(kv), read, err, showKV(both))
		}
	}
	const ops = 300
	for i := 1; i <= ops; i++ {
		p := randPath()
		_, exists := model[p]
		switch {
		case exists && rng.IntN(3) == 0:
			model.del(t, st.conn, p)
		default:
			v := values[rng.IntN(len(values))]
			if rng.IntN(2) == 0 {
				v += fmt.Sprint(i)
			}
			model.put(t, st.conn, p, v)
		}
		if i%50 == 0 {
			check(i)
		}
	}
	// Delete the watched prefix itself, then create it again.
	model.del(t, st.conn, "/r")
	check(ops + 1)
	model.put(t, st.conn, "/r/back/k", "again")
	check(ops + 2)
}
