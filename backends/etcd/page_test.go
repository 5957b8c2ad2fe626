package etcd

import (
	"fmt"
	"slices"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/internal/testservers"
)

// TestGetPages: a prefix holding more than two pages of keys comes back whole, values
// intact, and nothing from beside it ("/big" must not read "/big-other" or "/bigger").
func TestGetPages(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	n := 2*pageSize + 7
	var ops []clientv3.Op
	flush := func() {
		if _, err := cli.Txn(ctxT(t)).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := range n {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("/big/d%d/k%06d", i%7, i), fmt.Sprintf("v%d", i)))
		if len(ops) == maxTxnOps {
			flush()
		}
	}
	ops = append(ops, clientv3.OpPut("/big", "self"), clientv3.OpPut("/big-other/x", "no"), clientv3.OpPut("/bigger", "no"))
	flush()
	c := testConfig(srv)
	c.RequestTimeout = 0
	cl := newClient(t, c)
	kv, err := cl.Get(ctxT(t), []string{"/big", "/big/d3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(kv) != n+1 {
		t.Fatalf("got %d keys, want %d", len(kv), n+1)
	}
	for _, i := range []int{0, pageSize - 1, pageSize, 2 * pageSize, n - 1} {
		k := fmt.Sprintf("/big/d%d/k%06d", i%7, i)
		if kv[k] != fmt.Sprintf("v%d", i) {
			t.Fatalf("%s = %q, want v%d", k, kv[k], i)
		}
	}
	if kv["/big"] != "self" || kv["/big-other/x"] != "" || kv["/bigger"] != "" {
		t.Fatalf("prefix by path broken: /big=%q /big-other/x=%q /bigger=%q", kv["/big"], kv["/big-other/x"], kv["/bigger"])
	}
	// GetSorted returns the same keys, sorted, with their values, for prefixes whose ranges
	// interleave ("/big" < "/big-other" < "/big/…" < "/bigger") and some of which take pages.
	for _, ps := range [][]string{{"/big"}, {"/bigger", "/big", "/big-other"}, {"/"}, {"/none"}} {
		want, err := cl.Get(ctxT(t), ps)
		if err != nil {
			t.Fatal(err)
		}
		keys, values, err := cl.GetSorted(ctxT(t), ps)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != len(want) || len(values) != len(keys) || keys == nil {
			t.Fatalf("GetSorted(%v): %d keys, %d values; want %d", ps, len(keys), len(values), len(want))
		}
		if !slices.IsSorted(keys) {
			t.Fatalf("GetSorted(%v): keys not sorted", ps)
		}
		for i, k := range keys {
			if i > 0 && keys[i-1] == k {
				t.Fatalf("GetSorted(%v): %s twice", ps, k)
			}
			if v, ok := want[k]; !ok || v != values[i] {
				t.Fatalf("GetSorted(%v): %s = %q, Get has %q (%v)", ps, k, values[i], v, ok)
			}
		}
	}
}

// TestReadBudget: many ranges are read in transactions of a bounded number of keys, each page
// pinned to the first transaction's revision: read at an older revision returns exactly that
// revision's keys and values after the store changed, and a read at the latest revision
// returns the new ones, in order.
func TestReadBudget(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	var ops []clientv3.Op
	var rev int64
	flush := func() {
		if len(ops) == 0 {
			return
		}
		resp, err := cli.Txn(ctxT(t)).Then(ops...).Commit()
		if err != nil {
			t.Fatal(err)
		}
		rev, ops = resp.Header.Revision, ops[:0]
	}
	write := func(gen string, extra int) map[string]string {
		want := map[string]string{}
		for p := range 30 {
			if p%2 == 1 {
				k := fmt.Sprintf("/bud/p%02d", p)
				want[k] = gen + k
			}
			for i := range (p*37)%150 + extra {
				want[fmt.Sprintf("/bud/p%02d/k%03d", p, i)] = fmt.Sprintf("%s-%d-%d", gen, p, i)
			}
		}
		for k, v := range want {
			ops = append(ops, clientv3.OpPut(k, v))
			if len(ops) == maxTxnOps {
				flush()
			}
		}
		flush()
		return want
	}
	old := write("old", 0)
	oldRev := rev
	now := write("new", 3)
	cl := newClient(t, testConfig(srv))
	cl.budget = 200
	var ps []string
	for p := range 30 {
		ps = append(ps, fmt.Sprintf("/bud/p%02d", p))
	}
	check := func(name string, want map[string]string, keys, values []string) {
		t.Helper()
		if len(keys) != len(want) || len(values) != len(keys) || !slices.IsSorted(keys) {
			t.Fatalf("%s: %d keys (sorted %v), %d values; want %d", name, len(keys), slices.IsSorted(keys), len(values), len(want))
		}
		for i, k := range keys {
			if want[k] != values[i] {
				t.Fatalf("%s: %s = %q, want %q", name, k, values[i], want[k])
			}
		}
	}
	var sp sortedParts
	pages := 0
	got, err := cl.read(ctxT(t), ps, oldRev, sp.reset, func(i int, count int64, kvs []*mvccpb.KeyValue) {
		pages++
		sp.add(i, count, kvs)
	})
	if err != nil || got != oldRev {
		t.Fatalf("read at %d: revision %d, %v", oldRev, got, err)
	}
	keys, values := sp.join()
	check("at the old revision", old, keys, values)
	if pages <= len(ranges(ps)) {
		t.Fatalf("%d pages for %d ranges: nothing was read in more than one page", pages, len(ranges(ps)))
	}
	keys, values, err = cl.GetSorted(ctxT(t), ps)
	if err != nil {
		t.Fatal(err)
	}
	check("latest", now, keys, values)
}
