package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// mirrorRev returns the revision of a serving mirror of exactly p (cleaned), or 0.
func (c *Client) mirrorRev(p string) int64 {
	for _, m := range c.mirrors.Load() {
		if m.prefix == p {
			m.mu.RLock()
			rev, on := m.rev, m.serving
			m.mu.RUnlock()
			if on {
				return rev
			}
		}
	}
	return 0
}

// mirroredKeys returns how many keys the mirrors hold in all, serving or not.
func (c *Client) mirroredKeys() int {
	n := 0
	for _, m := range c.mirrors.Load() {
		m.mu.RLock()
		n += len(m.keys)
		m.mu.RUnlock()
	}
	return n
}

// mirrorCount returns how many mirrors are registered, serving or not.
func (c *Client) mirrorCount() int {
	return len(c.mirrors.Load())
}

// running is one Watch call of a test.
type running struct {
	changed chan struct{}
	cancel  context.CancelFunc
	done    chan error
}

// watchT runs b.Watch(prefixes) until stop (or the test's end).
func watchT(t *testing.T, b *Client, prefixes ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &running{changed: make(chan struct{}, 1), cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- b.Watch(ctx, prefixes, w.changed) }()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop cancels the watch and waits for Watch to return context.Canceled.
func (w *running) stop(t *testing.T) {
	t.Helper()
	if w.done == nil {
		return
	}
	w.cancel()
	select {
	case err := <-w.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("Watch did not return within 15s of cancel")
	}
	w.done = nil
}

// waitServing waits until a mirror of p serves at a revision of at least rev.
func waitServing(t *testing.T, b *Client, p string, rev int64) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, fmt.Sprintf("a mirror of %s serving at revision %d or later", p, rev),
		func() bool { return b.mirrorRev(p) >= max(rev, 1) })
}

// getT is Get that fails t on error and reports whether it read the server.
func getT(t *testing.T, b *Client, prefixes ...string) (kv map[string]string, server bool) {
	t.Helper()
	n := b.serverGets.Load()
	kv, err := b.Get(ctxT(t), prefixes)
	if err != nil {
		t.Fatalf("Get(%q): %v", prefixes, err)
	}
	return kv, b.serverGets.Load() != n
}

// under returns the entries of model at or under any of prefixes (cleaned).
func under(model map[string]string, prefixes ...string) map[string]string {
	return backends.Filter(model, backends.Dedupe(prefixes))
}

// sameKV fails t unless got equals want, naming the first difference.
func sameKV(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok || g != want[k] {
			t.Fatalf("%s: %d keys, want %d; %q = %q (present %v), want %q", what, len(got), len(want), k, g, ok, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Fatalf("%s: %d keys, want %d; unexpected %q = %q", what, len(got), len(want), k, got[k])
		}
	}
}

// TestMirrorServesAfterSignal: after each put or delete and its signal, the first Get already
// shows it and reads no server; once Watch returns, the mirror is gone and Get reads the
// server again.
func TestMirrorServesAfterSignal(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	cfg := testConfig(srv)
	cfg.ProgressInterval = time.Minute // no progress probe (which sends reads to the server) during the test
	b := newClient(t, cfg)
	const p = "/ma"
	put(t, cli, p+"/k", "0")
	put(t, cli, "/ma-replica/k", "outside")
	if _, server := getT(t, b, p); !server {
		t.Fatal("Get without a watch did not read the server")
	}
	w := watchT(t, b, p)
	waitServing(t, b, p, 0)
	drain(w.changed)

	model := map[string]string{p + "/k": "0"}
	steps := []struct {
		name string
		do   func() error
	}{
		{"put new", func() error { _, err := cli.Put(ctxT(t), p+"/db/host", "h1"); model[p+"/db/host"] = "h1"; return err }},
		{"update", func() error { _, err := cli.Put(ctxT(t), p+"/db/host", "h2"); model[p+"/db/host"] = "h2"; return err }},
		{"empty value", func() error { _, err := cli.Put(ctxT(t), p+"/empty", ""); model[p+"/empty"] = ""; return err }},
		{"the prefix's own key", func() error { _, err := cli.Put(ctxT(t), p, "self"); model[p] = "self"; return err }},
		{"delete", func() error { _, err := cli.Delete(ctxT(t), p+"/db/host"); delete(model, p+"/db/host"); return err }},
		{"delete by prefix", func() error {
			_, err := cli.Delete(ctxT(t), p+"/", clientv3.WithPrefix())
			for k := range model {
				if strings.HasPrefix(k, p+"/") {
					delete(model, k)
				}
			}
			return err
		}},
		{"txn of two", func() error {
			_, err := cli.Txn(ctxT(t)).Then(clientv3.OpPut(p+"/a", "1"), clientv3.OpPut(p+"/b/c", "2")).Commit()
			model[p+"/a"], model[p+"/b/c"] = "1", "2"
			return err
		}},
	}
	for _, s := range steps {
		drain(w.changed)
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		waitSignal(t, w.changed, s.name)
		kv, server := getT(t, b, p)
		if server {
			t.Errorf("%s: the first Get after the signal read the server", s.name)
		}
		sameKV(t, s.name+": the first Get after the signal", kv, model)
		n := b.serverGets.Load()
		keys, values, err := b.GetSorted(ctxT(t), []string{p + "/b", p})
		if err != nil || b.serverGets.Load() != n {
			t.Fatalf("%s: GetSorted: %v (read the server: %v)", s.name, err, b.serverGets.Load() != n)
		}
		if !slices.IsSorted(keys) || len(values) != len(keys) {
			t.Fatalf("%s: GetSorted: keys %q not sorted or values %q not parallel", s.name, keys, values)
		}
		got := map[string]string{}
		for i, k := range keys {
			got[k] = values[i]
		}
		sameKV(t, s.name+": GetSorted", got, model)
	}
	// A prefix the watch does not cover reads the server, whole.
	if kv, server := getT(t, b, p, "/ma-replica"); !server || kv["/ma-replica/k"] != "outside" || kv[p+"/a"] != "1" {
		t.Errorf("Get of a prefix beside the watched one: %v (read the server: %v)", kv, server)
	}
	// Returned maps are the caller's: changing one changes nothing else.
	kv, _ := getT(t, b, p)
	kv[p+"/a"] = "changed by the caller"
	if kv2, _ := getT(t, b, p); kv2[p+"/a"] != "1" {
		t.Errorf("a caller's change to a returned map reached the mirror: %q", kv2[p+"/a"])
	}

	w.stop(t)
	if b.mirrorCount() != 0 {
		t.Errorf("%d mirrors left after Watch returned", b.mirrorCount())
	}
	if _, server := getT(t, b, p); !server {
		t.Error("Get after Watch returned did not read the server")
	}
}

// TestMirrorNotWithoutWatch: Get alone keeps no mirror (-onetime pays nothing).
func TestMirrorNotWithoutWatch(t *testing.T) {
	srv := testservers.Etcd(t)
	put(t, raw(t, "http://"+srv.Addr), "/nw/k", "v")
	b := newClient(t, testConfig(srv))
	for range 3 {
		if _, server := getT(t, b, "/nw"); !server {
			t.Fatal("Get without a watch did not read the server")
		}
	}
	if b.mirrorCount() != 0 || b.mirroredKeys() != 0 {
		t.Errorf("Get alone left %d mirrors holding %d keys", b.mirrorCount(), b.mirroredKeys())
	}
}

// TestMirrorCompacted: a watch whose start revision was compacted reads the latest revision,
// signals once, and serves correct data.
func TestMirrorCompacted(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	const p = "/mc"
	put(t, cli, p+"/k", "0")
	put(t, cli, p+"/gone", "x")
	b := newClient(t, testConfig(srv))
	if _, err := b.Get(ctxT(t), []string{p}); err != nil { // the watch starts after this revision
		t.Fatal(err)
	}
	put(t, cli, p+"/k", "1")
	put(t, cli, p+"/new/deep/key", "n")
	if _, err := cli.Delete(ctxT(t), p+"/gone"); err != nil {
		t.Fatal(err)
	}
	last, err := cli.Put(ctxT(t), p+"/k", "2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctxT(t), last.Header.Revision); err != nil {
		t.Fatalf("compact: %v", err)
	}
	w := watchT(t, b, p)
	waitSignal(t, w.changed, "a compacted start revision")
	waitServing(t, b, p, last.Header.Revision)
	kv, server := getT(t, b, p)
	if server {
		t.Error("Get after the relist read the server")
	}
	sameKV(t, "Get after the relist", kv, map[string]string{p + "/k": "2", p + "/new/deep/key": "n"})
	// It goes on following events.
	drain(w.changed)
	put(t, cli, p+"/k", "3")
	waitSignal(t, w.changed, "a put after the relist")
	if kv, _ := getT(t, b, p); kv[p+"/k"] != "3" {
		t.Errorf("after a put following the relist: %v", kv)
	}
}

// TestMirrorServerStopped: with the server stopped Get fails (it never answers from the
// mirror); once the server is back the watch recovers, the mirror serves again and shows
// writes made since.
func TestMirrorServerStopped(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	const p = "/ms"
	put(t, cli, p+"/k", "before")
	b := newClient(t, testConfig(srv))
	w := watchT(t, b, p)
	waitServing(t, b, p, 0)

	srv.Stop(t)
	stopped := true
	t.Cleanup(func() {
		if stopped {
			srv.Start(t)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	kv, err := b.Get(ctx, []string{p})
	cancel()
	if err == nil {
		t.Fatalf("Get with the server stopped returned %v and no error", kv)
	}
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get with the server stopped: %v, want ErrUnavailable", err)
	}
	srv.Start(t)
	stopped = false
	put(t, cli, p+"/k", "after")
	put(t, cli, p+"/k2", "new")
	lastRev := waitPut(t, cli, p+"/k3", "last")
	waitServing(t, b, p, lastRev)
	kv, server := getT(t, b, p)
	if server {
		t.Error("Get after the recovery read the server")
	}
	sameKV(t, "Get after the recovery", kv, map[string]string{p + "/k": "after", p + "/k2": "new", p + "/k3": "last"})
	drain(w.changed)
}

// waitPut puts k = v and returns the revision of the write.
func waitPut(t *testing.T, cli *clientv3.Client, k, v string) int64 {
	t.Helper()
	r, err := cli.Put(ctxT(t), k, v)
	if err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
	return r.Header.Revision
}

// TestMirrorPaused: a frozen server makes Get fail within a deadline (the mirror stops serving
// when the stream goes silent); after it thaws the mirror serves again with fresh data.
func TestMirrorPaused(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	const p = "/mp"
	put(t, cli, p+"/k", "before")
	b := newClient(t, testConfig(srv))
	watchT(t, b, p)
	waitServing(t, b, p, 0)

	srv.Pause(t)
	paused := true
	defer func() {
		if paused {
			srv.Resume(t)
		}
	}()
	testutil.Until(t, 30*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := b.Get(ctx, []string{p})
		if err == nil {
			return errors.New("Get kept answering 30s after the server froze")
		}
		t.Logf("Get with the server frozen: %v", err)
		return nil
	})
	srv.Resume(t)
	paused = false
	rev := waitPut(t, cli, p+"/k", "after")
	waitServing(t, b, p, rev)
	kv, _ := getT(t, b, p)
	sameKV(t, "Get after the server thawed", kv, map[string]string{p + "/k": "after"})
}

// TestMirrorSecretsNotLogged: a watch whose reads start failing (its user lost the right to
// read) logs the failure without the password, and Get fails instead of answering from the
// mirror.
func TestMirrorSecretsNotLogged(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	ctx := ctxT(t)
	const pass = "m1rr0r-s3cret"
	for _, step := range []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", "root-"+pass); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "reader"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "reader", "/sec", clientv3.GetPrefixRangeEnd("/sec"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "app", pass); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "app", "reader"); return err },
		func() error { _, err := cli.Put(ctx, "/sec/k", "v"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("setting up auth: %v", err)
		}
	}
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + srv.Addr}, DialTimeout: 5 * time.Second,
		Username: "root", Password: "root-" + pass, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var logs syncBuffer
	px := newProxy(t, srv.Addr)
	cfg := testConfig(srv)
	cfg.Endpoints = []string{"http://" + px.addr()}
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Username, cfg.Password = "app", pass
	b := newClient(t, cfg)
	watchT(t, b, "/sec")
	waitServing(t, b, "/sec", 0)
	if kv, server := getT(t, b, "/sec"); server || kv["/sec/k"] != "v" {
		t.Errorf("Get with auth: %v (read the server: %v)", kv, server)
	}

	if _, err := root.RoleRevokePermission(ctx, "reader", "/sec", clientv3.GetPrefixRangeEnd("/sec")); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	px.setCut(true) // the watch must read again when the link comes back, and cannot
	testutil.Eventually(t, 20*time.Second, "Get failing with the link cut", func() bool {
		c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := b.Get(c, []string{"/sec"})
		return err != nil
	})
	px.setCut(false)
	testutil.Eventually(t, 30*time.Second, "the failed read logged", func() bool {
		return strings.Contains(logs.String(), "permission denied")
	})
	if _, err := b.Get(ctx, []string{"/sec"}); !errors.Is(err, backends.ErrAuth) {
		t.Errorf("Get after the permission was revoked: %v, want ErrAuth", err)
	}
	if strings.Contains(logs.String(), pass) {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
}
