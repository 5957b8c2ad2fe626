package etcd

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

// TestMirrorRandomized: about 500 random puts and deletes over nested keys under the watched
// prefix and beside it (siblings sharing its string prefix, deep keys, empty values, unicode),
// with a second watch on a nested prefix and readers running throughout. After the last
// write, Get of the prefix and of sub-prefixes equals a model and an uncached server read, and
// is served from memory; the mirrors hold only the watched keys.
func TestMirrorRandomized(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	cfg := testConfig(srv)
	cfg.ProgressInterval = time.Minute
	b := newClient(t, cfg)
	uncached := newClient(t, testConfig(srv)) // never watches: every Get reads the server
	const p = "/rnd/p"
	inside := []string{p, p + "/a", p + "/ab", p + "/a/b", p + "/a/b/c/d/e/f", p + "/a-b", p + "/a.b",
		p + "/ü/ключ", p + "/日本/値", p + "/x y", p + "//double", p + "/a/", p + "/ab/c"}
	for i := range 20 {
		inside = append(inside, fmt.Sprintf("%s/n/%02d", p, i))
	}
	outside := []string{"/rnd/pa", "/rnd/p-x/k", "/rnd/pp", "/rnd", "/rnd/other/k", "/rnd/p0"}
	values := []string{"", "v", "värde ✓ 値", "line1\nline2", " spaced ", "{\"json\":true}"}

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	model := map[string]string{}
	write := func(k string) int64 {
		if rng.IntN(10) < 3 {
			r, err := cli.Delete(ctxT(t), k)
			if err != nil {
				t.Fatalf("delete %s: %v", k, err)
			}
			delete(model, k)
			return r.Header.Revision
		}
		v := values[rng.IntN(len(values))]
		if rng.IntN(3) == 0 {
			v = fmt.Sprint(rng.Int())
		}
		r, err := cli.Put(ctxT(t), k, v)
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		model[k] = v
		return r.Header.Revision
	}
	for range 30 { // some data before the watch starts
		write(inside[rng.IntN(len(inside))])
	}
	if _, err := b.Get(ctxT(t), []string{p}); err != nil {
		t.Fatal(err)
	}
	w := watchT(t, b, p)
	w2 := watchT(t, b, p+"/a")
	waitServing(t, b, p, 0)
	waitServing(t, b, p+"/a", 0)

	// Readers check while events apply: nothing from outside the prefix, keys sorted. A read
	// may fail (on a loaded machine the connection may drop, and Get then reads the server),
	// but it never returns wrong keys.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads, failed atomic.Int64
	errs := make(chan error, 4)
	rctx := ctxT(t)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				time.Sleep(time.Millisecond) // leave the CPU to the writer and the server
				q := []string{p, p + "/a", p + "/n"}[r%3]
				var keys []string
				var err error
				if r%2 == 0 {
					var kv map[string]string
					kv, err = b.Get(rctx, []string{q})
					keys = slices.Collect(maps.Keys(kv))
				} else {
					keys, _, err = b.GetSorted(rctx, []string{q})
					if err == nil && !slices.IsSorted(keys) {
						errs <- fmt.Errorf("GetSorted(%s): keys not sorted", q)
						return
					}
				}
				reads.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				for _, k := range keys {
					if !backends.UnderPrefix(k, q) {
						errs <- fmt.Errorf("Get(%s) returned %s", q, k)
						return
					}
				}
			}
		}()
	}
	for range 500 {
		k := inside[rng.IntN(len(inside))]
		if rng.IntN(4) == 0 {
			k = outside[rng.IntN(len(outside))]
		}
		write(k)
	}
	// The last writes land under p/a, then under p only, so that each mirror's revision tells
	// when everything reached it (each watch has its own stream).
	model[p+"/a/last"], model[p+"/n/00"] = "last", "last"
	lastA := waitPut(t, cli, p+"/a/last", "last")
	last := waitPut(t, cli, p+"/n/00", "last")
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent reader: %v", err)
	}
	t.Logf("concurrent readers: %d reads, %d failed", reads.Load(), failed.Load())
	waitServing(t, b, p, last)
	waitServing(t, b, p+"/a", lastA)
	drain(w.changed)
	drain(w2.changed)

	for _, q := range [][]string{{p}, {p + "/a"}, {p + "/ab"}, {p + "/a/b"}, {p + "/ü"}, {p + "/n"},
		{p + "/none"}, {p + "/a", p + "/ab", p + "/n/03"}, {p + "/a/*"}, {p + "/"}} {
		want := under(model, q...)
		kv, server := getT(t, b, q...)
		if server {
			t.Errorf("Get(%q) read the server", q)
		}
		sameKV(t, fmt.Sprintf("Get(%q) against the model", q), kv, want)
		sameKV(t, fmt.Sprintf("Get(%q) against an uncached read", q), kv, mustGet(t, uncached, q...))
		keys, vals, err := b.GetSorted(ctxT(t), q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys, slices.Sorted(maps.Keys(want))) {
			t.Fatalf("GetSorted(%q) keys %q, want %q", q, keys, slices.Sorted(maps.Keys(want)))
		}
		for i, k := range keys {
			if vals[i] != want[k] {
				t.Fatalf("GetSorted(%q): %s = %q, want %q", q, k, vals[i], want[k])
			}
		}
	}
	// Only the watched prefixes are held: the keys under p, and again under p/a.
	if n, want := b.mirroredKeys(), len(under(model, p))+len(under(model, p+"/a")); n != want {
		t.Errorf("the mirrors hold %d keys, want %d", n, want)
	}
	// Reads beside the watched prefix go to the server and see the keys outside.
	kv, server := getT(t, b, "/rnd")
	if !server {
		t.Error("Get(/rnd) did not read the server")
	}
	sameKV(t, "Get(/rnd)", kv, under(model, "/rnd"))
	// A transaction touching many keys at once arrives whole.
	var ops []clientv3.Op
	for _, k := range inside[:10] {
		ops = append(ops, clientv3.OpPut(k, "txn"))
		model[k] = "txn"
	}
	tr, err := cli.Txn(ctxT(t)).Then(ops...).Commit()
	if err != nil {
		t.Fatal(err)
	}
	waitSignal(t, w.changed, "a transaction")
	kv, _ = getT(t, b, p)
	sameKV(t, "Get after a transaction", kv, under(model, p))
	waitServing(t, b, p+"/a", tr.Header.Revision)
	// Big responses (past mergeMin events) are merged in one pass: a transaction over every
	// key, some put and some deleted, then a delete of a range.
	ops = ops[:0]
	for _, k := range inside {
		if rng.IntN(3) == 0 {
			ops = append(ops, clientv3.OpDelete(k))
			delete(model, k)
			continue
		}
		v := fmt.Sprint("big-", rng.IntN(1000))
		ops = append(ops, clientv3.OpPut(k, v))
		model[k] = v
	}
	if len(ops) < mergeMin {
		t.Fatalf("the big transaction has %d operations, fewer than mergeMin (%d)", len(ops), mergeMin)
	}
	big, err := cli.Txn(ctxT(t)).Then(ops...).Commit()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		model[fmt.Sprintf("%s/n/%02d", p, i)] = "n"
		put(t, cli, fmt.Sprintf("%s/n/%02d", p, i), "n")
	}
	dr, err := cli.Delete(ctxT(t), p+"/n/", clientv3.WithPrefix())
	if err != nil || dr.Deleted < mergeMin {
		t.Fatalf("delete of a range: %d deleted, %v", dr.Deleted, err)
	}
	for i := range 20 {
		delete(model, fmt.Sprintf("%s/n/%02d", p, i))
	}
	waitServing(t, b, p, dr.Header.Revision)
	waitServing(t, b, p+"/a", big.Header.Revision) // its own stream: it may lag the other
	for _, q := range [][]string{{p}, {p + "/a"}, {p + "/n"}} {
		kv, server := getT(t, b, q...)
		if server {
			t.Errorf("Get(%q) after big responses read the server", q)
		}
		sameKV(t, fmt.Sprintf("Get(%q) after big responses", q), kv, under(model, q...))
		sameKV(t, fmt.Sprintf("Get(%q) after big responses, uncached", q), kv, mustGet(t, uncached, q...))
	}
}

func mustGet(t *testing.T, b *Client, prefixes ...string) map[string]string {
	t.Helper()
	kv, err := b.Get(ctxT(t), prefixes)
	if err != nil {
		t.Fatalf("Get(%q): %v", prefixes, err)
	}
	return kv
}

// TestMirrorApply drives mirror.apply with random responses of one to forty events (some
// repeating a key, some below the mirror's revision, some beside the prefix) and compares
// every read with a model, on both paths (one event at a time, and merged).
func TestMirrorApply(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	const p = "/m"
	names := []string{"/m", "/m/a", "/m/ab", "/m/a/b", "/m/a-b", "/m/b/c/d", "/m//x", "/m/ü", "/ma", "/m-x", "/m0"}
	m := &mirror{prefix: p, serving: true, rev: 10}
	model := map[string]string{}
	rev := int64(10)
	for range 2000 {
		var evs []*clientv3.Event
		n := 1 + rng.IntN(40)
		if rng.IntN(2) == 0 {
			n = 1 + rng.IntN(3)
		}
		for range n {
			if rng.IntN(3) > 0 { // a new revision; else the same one (a transaction)
				rev++
			}
			k := names[rng.IntN(len(names))]
			ev := &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(k), Value: []byte(fmt.Sprint(rng.IntN(100))), ModRevision: rev}}
			if rng.IntN(3) == 0 {
				ev.Type, ev.Kv.Value = clientv3.EventTypeDelete, nil
			}
			evs = append(evs, ev)
		}
		if rng.IntN(10) == 0 { // replayed old events are skipped
			old := &mvccpb.KeyValue{Key: evs[0].Kv.Key, Value: []byte("replayed"), ModRevision: m.rev}
			evs = append([]*clientv3.Event{{Type: clientv3.EventTypePut, Kv: old}}, evs...)
		}
		wantChanged := false
		for _, ev := range evs {
			k := string(ev.Kv.Key)
			if ev.Kv.ModRevision <= m.rev || !backends.UnderPrefix(k, p) {
				continue
			}
			wantChanged = true
			if ev.Type == clientv3.EventTypeDelete {
				delete(model, k)
			} else {
				model[k] = string(ev.Kv.Value)
			}
		}
		if got := m.apply(evs); got != wantChanged {
			t.Fatalf("apply reported changed %v, want %v", got, wantChanged)
		}
		if !slices.IsSorted(m.keys) || len(m.keys) != len(m.values) {
			t.Fatalf("mirror keys not sorted or values not parallel: %q", m.keys)
		}
		for _, q := range []string{p, "/m/a", "/m/b", "/m/none"} {
			got := map[string]string{}
			if _, ok := m.read(q, func(keys, values []string) {
				for i, k := range keys {
					got[k] = values[i]
				}
			}); !ok {
				t.Fatal("a serving mirror refused a read")
			}
			sameKV(t, "read "+q, got, under(model, q))
		}
	}
}
