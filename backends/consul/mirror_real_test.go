package consul

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// mirrorClient is a client whose watch answers stay servable for a minute, so that a Get
// after a signal on a loaded machine is still served from them.
func mirrorClient(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := New(Config{Address: addr, Logger: quiet, WaitTime: 10 * time.Second, MinGap: 5 * time.Millisecond,
		BackoffMax: time.Second, RequestTimeout: 3 * time.Second, MirrorTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refClient never serves from a watch: every Get lists from the agent.
func refClient(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := New(Config{Address: addr, Logger: quiet, MirrorTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// watching runs c.Watch on prefixes until the test ends and returns its signal channel.
func watching(t *testing.T, c *Client, prefixes ...string) chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, prefixes, changed) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Watch returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return within 5s of cancel")
		}
	})
	return changed
}

func waitSignal(t *testing.T, changed chan struct{}, after string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(15 * time.Second):
		t.Fatalf("no signal within 15s after %s", after)
	}
}

// drain takes signals until none came for 300ms.
func drain(changed chan struct{}) {
	for {
		select {
		case <-changed:
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

// mirroredGet is Get that also reports whether it was served without a round trip.
func mirroredGet(t *testing.T, c *Client, prefixes ...string) (map[string]string, bool) {
	t.Helper()
	before := c.reads.Load()
	kv, err := c.Get(context.Background(), prefixes)
	if err != nil {
		t.Fatalf("Get(%q): %v", prefixes, err)
	}
	return kv, c.reads.Load() == before
}

// (a) After each put or delete and its signal, the first Get shows it, served from the watch.
func TestMirrorAfterSignal(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := mirrorClient(t, srv.Addr)
	const p = "/sig/app"
	put(t, st, p+"/ready", "0")
	changed := watching(t, c, p)
	waitSignal(t, changed, "the watch started")
	want := map[string]string{p + "/ready": "0"}
	for i := range 20 {
		drain(changed)
		k := fmt.Sprintf("%s/k%d", p, i%4)
		what := "put " + k
		if _, ok := want[k]; ok && i%3 == 0 {
			del(t, st, k)
			delete(want, k)
			what = "delete " + k
		} else {
			v := fmt.Sprintf("v%d", i)
			put(t, st, k, v)
			want[k] = v
		}
		waitSignal(t, changed, what)
		kv, served := mirroredGet(t, c, p)
		if !maps.Equal(kv, want) {
			t.Errorf("first Get after the signal for %s = %q, want %q", what, kv, want)
		}
		if !served {
			t.Errorf("the Get after the signal for %s asked the agent", what)
		}
		keys, _, err := c.GetSorted(context.Background(), []string{p})
		if err != nil || !slices.Equal(keys, slices.Sorted(maps.Keys(want))) {
			t.Errorf("GetSorted after %s = %q, %v", what, keys, err)
		}
	}
	// A write to a sibling that shares the string prefix changes nothing and is not served.
	put(t, st, p+"-replica/k", "x")
	if kv, _ := mirroredGet(t, c, p); !maps.Equal(kv, want) {
		t.Errorf("after a write to %s-replica: %q, want %q", p, kv, want)
	}
}

// expect is what Get(q) returns over raw (Consul keys → values), as Get treats them: the
// keys listed by the string prefix, cleaned, kept by path; the last real key of a path wins
// and a folder entry alone reads as "".
func expect(raw map[string]string, q string) map[string]string {
	out := map[string]string{}
	var folders []string
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		clean := path.Join("/", k)
		if !strings.HasPrefix(k, consulKey(q)) || !backends.UnderPrefix(clean, q) {
			continue
		}
		if strings.HasSuffix(k, "/") {
			folders = append(folders, clean)
		} else {
			out[clean] = raw[k]
		}
	}
	for _, f := range folders {
		if _, ok := out[f]; !ok {
			out[f] = ""
		}
	}
	return out
}

// (b) Random puts and deletes over nested keys under the watched prefix and beside it: Get of
// the prefix and of prefixes under it equal the model and a read from the agent.
func TestMirrorRandomized(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := mirrorClient(t, srv.Addr)
	ref := refClient(t, srv.Addr)
	const p = "rnd/p/a"
	pool := []string{p, p + "/x", p + "/x/y", p + "/x/y/z/deep/er", p + "/ünï/cødé", p + "/sp ace", p + "/f/", p + "/f",
		p + "/f/in", p + "/x/", // inside
		"rnd/p/ab", "rnd/p/ab/x", "rnd/p", "rnd/p/b/x", "rnd/p/a-replica/x"} // beside
	values := []string{"", "v", "ĥéllo ✓", "multi\nline", strings.Repeat("long ", 50)}
	queries := [][]string{{"/" + p}, {"/" + p + "/x"}, {"/" + p + "/x/y"}, {"/" + p + "/f"}, {"/" + p + "/ünï"},
		{"/" + p + "/x/y/z/deep/er"}, {"/" + p + "/x", "/" + p + "/f"}, {"/" + p + "/nothing"}}
	raw := map[string]string{}
	put(t, st, p+"/x", "start")
	raw[p+"/x"] = "start"
	changed := watching(t, c, "/"+p)
	waitSignal(t, changed, "the watch started")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	signals := 0
	for i := range 300 {
		drain0(changed)
		before := expect(raw, "/"+p)
		k := pool[rng.IntN(len(pool))]
		if _, ok := raw[k]; ok && rng.IntN(3) == 0 {
			del(t, st, "/"+k)
			delete(raw, k)
		} else {
			v := values[rng.IntN(len(values))]
			put(t, st, "/"+k, v)
			raw[k] = v
		}
		if maps.Equal(before, expect(raw, "/"+p)) {
			continue // nothing under the prefix changed: no signal is due
		}
		waitSignal(t, changed, fmt.Sprintf("op %d on %s", i, k))
		signals++
		for _, q := range queries {
			want := map[string]string{}
			for _, qq := range q {
				maps.Copy(want, expect(raw, qq))
			}
			got, served := mirroredGet(t, c, q...)
			if !served {
				t.Errorf("op %d: Get(%q) after the signal asked the agent", i, q)
			}
			server, err := ref.Get(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) || !maps.Equal(server, want) {
				t.Fatalf("op %d (%s): Get(%q)\n  from the watch %q\n  from the agent %q\n  model          %q", i, k, q, got, server, want)
			}
		}
	}
	if signals < 50 {
		t.Errorf("only %d of 300 operations changed the watched prefix", signals)
	}
}

// drain0 takes a pending signal, if any, without waiting.
func drain0(changed chan struct{}) {
	select {
	case <-changed:
	default:
	}
}

// Watches on nested prefixes (and twice on one) on one client: the Get after either
// watch's signal shows the change, whichever watch serves it.
func TestMirrorNestedWatches(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := mirrorClient(t, srv.Addr)
	put(t, st, "nest/db/k", "init")
	outer := watching(t, c, "/nest")
	inner := watching(t, c, "/nest/db")
	waitSignal(t, outer, "the outer watch started")
	waitSignal(t, inner, "the inner watch started")
	for i := range 30 {
		drain0(outer)
		drain0(inner)
		v := fmt.Sprint(i)
		put(t, st, "nest/db/k", v)
		first, second, q := inner, outer, "/nest/db"
		if i%2 == 1 {
			first, second, q = outer, inner, "/nest"
		}
		waitSignal(t, first, "put nest/db/k = "+v)
		kv, served := mirroredGet(t, c, "/nest/db")
		if kv["/nest/db/k"] != v {
			t.Errorf("round %d: first Get(/nest/db) after the %s watch's signal = %q, want %q", i, q, kv, v)
		}
		if !served && i%2 == 0 {
			t.Errorf("round %d: Get(/nest/db) after the inner watch's signal asked the agent", i)
		}
		// The other watch saw the write too: its signal must not be taken for the next one's.
		waitSignal(t, second, "put nest/db/k = "+v+" (the other watch)")
	}
	// A second watch on the same prefix: ending it leaves the first one serving.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	again := make(chan struct{}, 1)
	go func() { done <- c.Watch(ctx, []string{"/nest/db"}, again) }()
	waitSignal(t, again, "the second watch on /nest/db started")
	cancel()
	<-done
	drain0(inner)
	put(t, st, "nest/db/k", "last")
	waitSignal(t, inner, "put after the second watch ended")
	if kv, served := mirroredGet(t, c, "/nest/db"); kv["/nest/db/k"] != "last" || !served {
		t.Errorf("after the second watch ended: %q (served from a watch %v), want last from a watch", kv, served)
	}
}

// After Watch returns, Get reads the agent again and GetSorted declines.
func TestMirrorEndsWithWatch(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := mirrorClient(t, srv.Addr)
	put(t, st, "end/k", "v")
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, []string{"/end"}, changed) }()
	waitSignal(t, changed, "the watch started")
	if _, served := mirroredGet(t, c, "/end"); !served {
		t.Error("Get while watching asked the agent")
	}
	cancel()
	<-done
	if _, served := mirroredGet(t, c, "/end"); served {
		t.Error("Get after Watch returned was served without asking the agent")
	}
	if _, _, err := c.GetSorted(context.Background(), []string{"/end"}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("GetSorted after Watch returned: %v, want errors.ErrUnsupported", err)
	}
}

// (c) A stopped agent: Get fails (never the watch's old answer) until it is back; the dev
// agent comes back empty, and Get shows that, then new writes, from the watch again.
func TestMirrorOutage(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := mirrorClient(t, srv.Addr)
	put(t, st, "out/k", "before")
	changed := watching(t, c, "/out")
	waitSignal(t, changed, "the watch started")
	if kv, served := mirroredGet(t, c, "/out"); kv["/out/k"] != "before" || !served {
		t.Fatalf("before the stop: %q (served from the watch %v)", kv, served)
	}
	srv.Stop(t)
	stopped := true
	defer func() {
		if stopped {
			srv.Start(t)
		}
	}()
	var err error
	took := testutil.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if _, err = c.Get(context.Background(), []string{"/out"}); err == nil {
			return errors.New("Get still answers 10s after the agent stopped")
		}
		return nil
	})
	t.Logf("Get failed %v after the stop: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get with the agent stopped: %v, want backends.ErrUnavailable", err)
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if kv, err := c.Get(context.Background(), []string{"/out"}); err == nil {
			t.Fatalf("Get with the agent stopped answered %q", kv)
		}
	}

	srv.Start(t)
	stopped = false
	waitSignal(t, changed, "the agent came back")
	testutil.Until(t, 15*time.Second, 50*time.Millisecond, func() error {
		if kv, err := c.Get(context.Background(), []string{"/out"}); err != nil || len(kv) != 0 {
			return fmt.Errorf("15s after the restart Get = %q, %v; want the restarted agent's empty store", kv, err)
		}
		return nil
	})
	drain(changed)
	put(t, st, "out/k", "after")
	waitSignal(t, changed, "a put after the restart")
	if kv, served := mirroredGet(t, c, "/out"); kv["/out/k"] != "after" || !served {
		t.Errorf("after the restart: %q (served from the watch %v), want after from the watch", kv, served)
	}
}

// A resource reading two watched prefixes, one of them quiet for longer than MirrorTTL: the
// Get after a change to the other is still served from the watches (a loopback agent that
// just answered is alive), and not once the agent has been silent for the TTL.
func TestMirrorQuietPrefix(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c, err := New(Config{Address: srv.Addr, Logger: quiet, WaitTime: 30 * time.Second, MinGap: 5 * time.Millisecond,
		MirrorTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	put(t, st, "quiet/a/k", "a0")
	put(t, st, "quiet/b/k", "b0")
	ca := watching(t, c, "/quiet/a")
	cb := watching(t, c, "/quiet/b")
	waitSignal(t, ca, "the watch on /quiet/a started")
	waitSignal(t, cb, "the watch on /quiet/b started")
	for i := range 2 {
		time.Sleep(1500 * time.Millisecond) // past the TTL: both watches' last answers are old
		if _, served := mirroredGet(t, c, "/quiet/a", "/quiet/b"); served {
			t.Errorf("round %d: served from the watches with the agent silent for longer than the TTL", i)
		}
		time.Sleep(1500 * time.Millisecond) // the Get above heard the agent: let that age too
		drain0(ca)
		v := fmt.Sprintf("a%d", i+1)
		put(t, st, "quiet/a/k", v)
		waitSignal(t, ca, "put quiet/a/k")
		kv, served := mirroredGet(t, c, "/quiet/a", "/quiet/b")
		if kv["/quiet/a/k"] != v || kv["/quiet/b/k"] != "b0" {
			t.Errorf("round %d: Get = %q, want /quiet/a/k=%s /quiet/b/k=b0", i, kv, v)
		}
		if !served {
			t.Errorf("round %d: the Get after a change to /quiet/a asked the agent (the /quiet/b watch is quiet but healthy)", i)
		}
	}
}
