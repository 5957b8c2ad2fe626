package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// getCounted runs Get and reports whether it read the server (rather than a watch's mirror).
func getCounted(t *testing.T, c *Client, prefixes ...string) (kv map[string]string, read bool, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := c.serverReads.Load()
	kv, err = c.Get(ctx, prefixes)
	return kv, c.serverReads.Load() != before, err
}

// mustMirror fails t unless Get succeeds from the mirror with exactly want.
func mustMirror(t *testing.T, c *Client, what string, want map[string]string, prefixes ...string) {
	t.Helper()
	kv, read, err := getCounted(t, c, prefixes...)
	switch {
	case err != nil:
		t.Fatalf("%s: Get(%q): %v", what, prefixes, err)
	case read:
		t.Errorf("%s: Get(%q) read the server; want it served from the watch's mirror", what, prefixes)
	}
	if !equalKV(kv, want) {
		t.Errorf("%s: Get(%q) = %s\nwant %s", what, prefixes, showKV(kv), showKV(want))
	}
}

func equalKV(a, b map[string]string) bool { return len(a) == len(b) && maps.Equal(a, b) }

func showKV(kv map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		b.WriteString(k + "=" + kv[k] + " ")
	}
	return "{" + b.String() + "}"
}

// quiet drains signals until none came for 500ms (the tail of one change's events).
func (w *watching) quiet(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for w.signalled(t, 500*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watch kept signalling with nothing changing")
		}
	}
}

// After each single change and its signal, the first Get shows the change and reads no server.
func TestMirrorFirstGetAfterSignal(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	st.put(t, "/m/seed", "s")
	st.put(t, "/m2/k", "other root")
	w := startWatch(t, c, "/m", "/m2")
	w.armed(t, st, "/m2/ready")
	model := map[string]string{"/m": "", "/m/seed": "s"} // every node under /m with its data

	acl := zk.WorldACL(zk.PermAll)
	steps := []struct {
		what string
		op   func() error
		set  map[string]string // model changes; "\x00" deletes
	}{
		{"create a key", func() error { _, err := st.conn.Create("/m/a", []byte("1"), 0, acl); return err }, map[string]string{"/m/a": "1"}},
		{"set it", func() error { _, err := st.conn.Set("/m/a", []byte("2"), -1); return err }, map[string]string{"/m/a": "2"}},
		{"set it empty", func() error { _, err := st.conn.Set("/m/a", nil, -1); return err }, map[string]string{"/m/a": ""}},
		{"create a sibling with a longer name", func() error { _, err := st.conn.Create("/m/ab", []byte("ab"), 0, acl); return err }, map[string]string{"/m/ab": "ab"}},
		{"create a folder", func() error { _, err := st.conn.Create("/m/d", nil, 0, acl); return err }, map[string]string{"/m/d": ""}},
		{"create below it", func() error { _, err := st.conn.Create("/m/d/e", []byte("deep"), 0, acl); return err }, map[string]string{"/m/d/e": "deep"}},
		{"create deeper", func() error { _, err := st.conn.Create("/m/d/e/f", []byte("ü 值 ключ"), 0, acl); return err }, map[string]string{"/m/d/e/f": "ü 值 ключ"}},
		{"give a folder data", func() error { _, err := st.conn.Set("/m/d", []byte("both"), -1); return err }, map[string]string{"/m/d": "both"}},
		{"delete the deepest", func() error { return st.conn.Delete("/m/d/e/f", -1) }, map[string]string{"/m/d/e/f": "\x00"}},
		{"delete a key", func() error { return st.conn.Delete("/m/a", -1) }, map[string]string{"/m/a": "\x00"}},
		{"create a unicode name", func() error { _, err := st.conn.Create("/m/ключ", []byte("v"), 0, acl); return err }, map[string]string{"/m/ключ": "v"}},
	}
	keys := func(prefix string) map[string]string {
		out := map[string]string{}
		for p, v := range model {
			if !backends.UnderPrefix(p, prefix) {
				continue
			}
			leaf := true
			for q := range model {
				if strings.HasPrefix(q, p+"/") {
					leaf = false
				}
			}
			if leaf || v != "" {
				out[p] = v
			}
		}
		return out
	}
	for _, s := range steps {
		if err := s.op(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		for k, v := range s.set {
			if v == "\x00" {
				delete(model, k)
			} else {
				model[k] = v
			}
		}
		if !w.signalled(t, 10*time.Second) {
			t.Fatalf("no signal within 10s after: %s", s.what)
		}
		mustMirror(t, c, "first Get after: "+s.what, keys("/m"), "/m")
		w.quiet(t)
	}
	mustMirror(t, c, "a sub-prefix", keys("/m/d"), "/m/d/")
	mustMirror(t, c, "a key itself", keys("/m/ab"), "/m/ab")
	mustMirror(t, c, "a missing key", nil, "/m/nothing")
	both := keys("/m/d")
	maps.Copy(both, serverKV(t, c, "/m2"))
	mustMirror(t, c, "two prefixes under two watched roots", both, "/m/d", "/m2")

	// A prefix outside the watched ones reads the server.
	if _, read, err := getCounted(t, c, "/m", "/elsewhere"); err != nil || !read {
		t.Errorf("Get of an unwatched prefix: read the server %v, err %v; want a server read", read, err)
	}
}

// When Watch returns, its mirror is dropped: Get reads the server again.
func TestMirrorDroppedWithWatch(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	st.put(t, "/drop/k", "v")
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{changed: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() { w.done <- c.Watch(ctx, []string{"/drop"}, w.changed) }()
	w.armed(t, st, "/drop/k")
	st.put(t, "/drop/k", "v2")
	w.expect(t, "a change")
	mustMirror(t, c, "while watching", map[string]string{"/drop/k": "v2"}, "/drop")
	cancel()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
	if n := len(c.mirrors.Load()); n != 0 {
		t.Errorf("%d mirrors left after Watch returned", n)
	}
	kv, read, err := getCounted(t, c, "/drop")
	if err != nil || !read || kv["/drop/k"] != "v2" {
		t.Errorf("Get after Watch returned = %q, server read %v, %v; want a server read", kv, read, err)
	}
}

// A stopped server fails Get at once although a watch mirrors the prefix; after the restart
// Get reads fresh data and, once re-armed, the mirror again.
func TestMirrorServerStopped(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	c, err := New(Config{Nodes: []string{srv.Addr}, Logger: quiet, SessionTimeout: 20 * time.Second, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st.put(t, "/stop/k", "before")
	w := startWatch(t, c, "/stop")
	w.armed(t, st, "/stop/ready")
	mustMirror(t, c, "before the stop", serverKV(t, c, "/stop"), "/stop")

	srv.Stop(t)
	stopped := true
	defer func() {
		if stopped {
			srv.Start(t)
		}
	}()
	if kv, err := c.Get(context.Background(), []string{"/stop"}); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Get right after the server stopped = %q, %v; want backends.ErrUnavailable", kv, err)
	}
	srv.Start(t)
	stopped = false
	st.put(t, "/stop/k", "after")
	testutil.Until(t, 30*time.Second, 100*time.Millisecond, func() error {
		kv, read, err := getCounted(t, c, "/stop")
		if err == nil && kv["/stop/k"] == "after" && !read {
			return nil // fresh, and from the re-armed mirror
		}
		if err == nil && read && kv["/stop/k"] != "after" {
			t.Fatalf("a server read after the restart = %q: stale", kv)
		}
		return fmt.Errorf("the mirror did not serve fresh data within 30s of the restart: %q, read %v, %v", kv, read, err)
	})
}

// serverKV reads prefixes from the server, never from a mirror.
func serverKV(t *testing.T, c *Client, prefixes ...string) map[string]string {
	t.Helper()
	kv, err := c.get(context.Background(), prefixes)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// Between the loss of a session and the end of re-arming, Get reads the server (so it sees
// what changed meanwhile); once re-armed, the mirror serves again.
func TestMirrorSessionExpiry(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	rec := &sessions{}
	c, err := New(Config{Nodes: []string{srv.Addr}, Logger: quiet, SessionTimeout: 4 * time.Second, wrapConn: rec.wrap})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reached := make(chan struct{}, 1)
	release := make(chan struct{})
	seeds := 0
	c.seedHook = func() { // runs on the watch's loop, one call at a time
		seeds++
		if seeds == 1 {
			return
		}
		select {
		case reached <- struct{}{}:
		default:
		}
		<-release
	}
	released := false
	st.put(t, "/exp/k", "v1")
	w := startWatch(t, c, "/exp")
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	w.armed(t, st, "/exp/ready")
	mustMirror(t, c, "before expiry", serverKV(t, c, "/exp"), "/exp")
	var id int64
	for _, m := range c.mirrors.Load() {
		id = m.sess.conn.SessionID()
	}
	var watchSession zkSession
	for _, s := range rec.all() {
		if s.id == id {
			watchSession = s
		}
	}
	if id == 0 || watchSession.id == 0 {
		t.Fatalf("no session recorded for the watch (id %x)", id)
	}
	closeSession(t, srv.Addr, watchSession)
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the watch did not start re-arming within 30s of losing its session")
	}
	st.put(t, "/exp/k", "v2")
	kv, read, err := getCounted(t, c, "/exp")
	if err != nil || !read || kv["/exp/k"] != "v2" {
		t.Fatalf("Get while re-arming = %q, server read %v, %v; want v2 from the server", kv, read, err)
	}
	close(release)
	released = true
	testutil.Until(t, 30*time.Second, 100*time.Millisecond, func() error {
		kv, read, err := getCounted(t, c, "/exp")
		if err != nil || read {
			return fmt.Errorf("the mirror did not serve within 30s of re-arming: read %v, %v", read, err)
		}
		if kv["/exp/k"] != "v2" {
			t.Fatalf("the re-armed mirror serves %q; want v2", kv)
		}
		return nil
	})
	w.quiet(t)
	st.put(t, "/exp/k", "v3")
	w.expect(t, "a change after the new session was armed")
	kv, read, err = getCounted(t, c, "/exp")
	if err != nil || read || kv["/exp/k"] != "v3" {
		t.Errorf("Get after the signal = %q, server read %v, %v; want v3 from the mirror", kv, read, err)
	}
}

// A frozen server: Get stops answering from the mirror within a few seconds and fails;
// after the server resumes, Get reads correct data again.
func TestMirrorFrozenServer(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	c, err := New(Config{Nodes: []string{srv.Addr}, Logger: quiet, SessionTimeout: 10 * time.Second, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st.put(t, "/fz/k", "v")
	w := startWatch(t, c, "/fz")
	w.armed(t, st, "/fz/ready")
	want := serverKV(t, c, "/fz")
	mustMirror(t, c, "before the freeze", want, "/fz")

	srv.Pause(t)
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume(t)
		}
	}()
	took := testutil.Until(t, 20*time.Second, 100*time.Millisecond, func() error {
		kv, err := c.Get(context.Background(), []string{"/fz"})
		if err != nil {
			if !errors.Is(err, backends.ErrUnavailable) {
				t.Errorf("Get from a frozen server: %v, want backends.ErrUnavailable", err)
			}
			return nil
		}
		if !equalKV(kv, want) {
			t.Fatalf("Get while frozen = %s, want %s", showKV(kv), showKV(want))
		}
		return errors.New("Get kept answering for 20s with the server frozen")
	})
	t.Logf("Get failed %v after the freeze", took.Round(time.Millisecond))
	srv.Resume(t)
	resumed = true
	st.put(t, "/fz/k", "thawed")
	want["/fz/k"] = "thawed"
	testutil.Until(t, 40*time.Second, 100*time.Millisecond, func() error {
		kv, read, err := getCounted(t, c, "/fz")
		if err == nil && !read && equalKV(kv, want) {
			return nil
		}
		if err == nil && read && kv["/fz/k"] != "thawed" {
			t.Fatalf("a server read after resuming = %q: stale", kv)
		}
		return fmt.Errorf("no fresh Get from the mirror within 40s of resuming: %q, read %v, %v", kv, read, err)
	})
}

// A watch on "/" mirrors the whole tree but ZooKeeper's own /zookeeper, which Get still reads
// from the server.
func TestMirrorRoot(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	st.put(t, "/top/a", "1")
	st.put(t, "/top/b/c", "")
	w := startWatch(t, c, "/")
	w.armed(t, st, "/top/ready")
	st.put(t, "/top/a", "2")
	w.expect(t, "a change under the watched root")
	mustMirror(t, c, "Get(/) from a watch on /", serverKV(t, c, "/"), "/")
	mustMirror(t, c, "Get(/*) from a watch on /", serverKV(t, c, "/top"), "/top/*")
	kv, read, err := getCounted(t, c, "/zookeeper")
	if err != nil || !read || !equalKV(kv, serverKV(t, c, "/zookeeper")) {
		t.Errorf("Get(/zookeeper) = %s, server read %v, %v; want ZooKeeper's own nodes from the server", showKV(kv), read, err)
	}
	if len(kv) == 0 {
		t.Errorf("Get(/zookeeper) is empty; want ZooKeeper's own nodes")
	}
}
