package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is a Config for srv with short timeouts, so that failure cases end quickly.
func testConfig(srv *testservers.Server) Config {
	return Config{
		Endpoints:        []string{"http://" + srv.Addr},
		DialTimeout:      2 * time.Second,
		RequestTimeout:   3 * time.Second,
		ProgressInterval: 2 * time.Second,
		BackoffBase:      50 * time.Millisecond,
		BackoffMax:       time.Second,
	}
}

// raw is the store's own client, for writing test data.
func raw(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func put(t testing.TB, cli *clientv3.Client, k, v string) {
	t.Helper()
	if _, err := cli.Put(ctxT(t), k, v); err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
}

func newClient(t testing.TB, c Config) *Client {
	t.Helper()
	b, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backends.Backend {
			b, err := New(testConfig(srv))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return b
		},
		Put: func(t *testing.T, k, v string) { put(t, cli, k, v) },
		Delete: func(t *testing.T, k string) {
			if _, err := cli.Delete(ctxT(t), k); err != nil {
				t.Fatalf("delete %s: %v", k, err)
			}
		},
		Stop:  func(t *testing.T) { srv.Stop(t) },
		Start: func(t *testing.T) { srv.Start(t) },
	})
}

// TestRegistered builds the backend by both its names from confd-style options.
func TestRegistered(t *testing.T) {
	srv := testservers.Etcd(t)
	put(t, raw(t, "http://"+srv.Addr), "/reg/k", "v")
	for _, name := range []string{"etcd", "etcdv3"} {
		b, err := backends.New(name, backends.Options{Nodes: []string{srv.Addr}, RequestTimeout: 3 * time.Second})
		if err != nil {
			t.Fatalf("backends.New(%q): %v", name, err)
		}
		kv, err := b.Get(ctxT(t), []string{"/reg"})
		b.Close()
		if err != nil || kv["/reg/k"] != "v" {
			t.Errorf("%s: Get = %v, %v", name, kv, err)
		}
	}
}

// TestGetManyPrefixes crosses the per-transaction operation limit: the later chunks are read
// at the first one's revision.
func TestGetManyPrefixes(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	var prefixes []string
	want := map[string]string{}
	for i := range 150 {
		p := fmt.Sprintf("/many/p%03d", i)
		prefixes = append(prefixes, p)
		put(t, cli, p+"/k", "v")
		put(t, cli, p+"-other/k", "no")
		want[p+"/k"] = "v"
	}
	b := newClient(t, testConfig(srv))
	kv, err := b.Get(ctxT(t), prefixes)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(kv) != len(want) {
		t.Fatalf("Get returned %d keys, want %d", len(kv), len(want))
	}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
}

// TestWatchAfterCompaction: a watch that must resume from a compacted revision signals so
// that the caller relists, and goes on watching.
func TestWatchAfterCompaction(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	put(t, cli, "/cmp/k", "0")
	b := newClient(t, testConfig(srv))
	if _, err := b.Get(ctxT(t), []string{"/cmp"}); err != nil { // the watch resumes after this revision
		t.Fatalf("Get: %v", err)
	}
	var last *clientv3.PutResponse
	for i := range 5 {
		var err error
		if last, err = cli.Put(ctxT(t), "/cmp/k", fmt.Sprint(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Compact(ctxT(t), last.Header.Revision); err != nil {
		t.Fatalf("compact: %v", err)
	}
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Watch(ctx, []string{"/cmp"}, changed) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	}()
	waitSignal(t, changed, "a compacted start revision")
	// It keeps watching: drain the reconnect signal, then a new write signals.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		drain(changed)
		put(t, cli, "/cmp/k", fmt.Sprint("after", i))
		select {
		case <-changed:
			return
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no signal for writes after the compaction")
		}
	}
}

// TestWatchPaused: a frozen server stalls the stream; after it thaws the watch signals
// (reconnect or progress) and goes on.
func TestWatchPaused(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	var logs syncBuffer
	cfg := testConfig(srv)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	b := newClient(t, cfg)
	if _, err := b.Get(ctxT(t), []string{"/pause"}); err != nil { // the watch starts after this revision
		t.Fatalf("Get: %v", err)
	}
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Watch(ctx, []string{"/pause"}, changed) }()
	defer func() { cancel(); <-done }()
	put(t, cli, "/pause/k", "1")
	waitSignal(t, changed, "a put")
	srv.Pause(t)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "stream silent") {
		if time.Now().After(deadline) {
			srv.Resume(t)
			t.Fatalf("the stall was not detected within 30s; log:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.Resume(t)
	drain(changed)
	put(t, cli, "/pause/k", "2")
	waitSignal(t, changed, "a put after the server thawed")
}

// TestWatchServerGoneBeforeCreated: the server stops after the watch read its prefix and
// before the watch is created (the etcd client's Watch then waits for as long as the server
// is away). The watch still reports the outage within a few progress intervals, and signals
// once the server is back.
func TestWatchServerGoneBeforeCreated(t *testing.T) {
	srv := testservers.Etcd(t)
	var logs syncBuffer
	cfg := testConfig(srv)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	b := newClient(t, cfg)
	var once sync.Once
	afterSeed = func() { once.Do(func() { srv.Stop(t) }) }
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Watch(ctx, []string{"/gone"}, changed) }()
	defer func() { cancel(); <-done; afterSeed = nil }()
	testutil.Eventually(t, 4*cfg.ProgressInterval+cfg.RequestTimeout,
		"no warning while the server was gone", func() bool { return strings.Contains(logs.String(), "level=WARN") })
	srv.Start(t)
	waitSignal(t, changed, "the server came back")
	put(t, raw(t, "http://"+srv.Addr), "/gone/k", "1")
	testutil.Eventually(t, 20*time.Second, "a Get showing a put after the server came back", func() bool {
		kv, err := b.Get(ctxT(t), []string{"/gone"})
		return err == nil && kv["/gone/k"] == "1"
	})
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testutil.SyncBuffer

func waitSignal(t *testing.T, changed chan struct{}, after string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatalf("no signal after %s", after)
	}
}

func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// TestAuth: a wrong password is ErrAuth and the password appears in no error.
func TestAuth(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	ctx := ctxT(t)
	const pass = "s3cret-Pa55"
	for _, step := range []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", pass); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.Put(ctx, "/auth/k", "v"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("setting up auth: %v", err)
		}
	}
	o := backends.Options{Nodes: []string{srv.Addr}, BasicAuth: true, Username: "root", Password: pass, DialTimeout: 3 * time.Second}
	b, err := backends.New("etcd", o)
	if err != nil {
		t.Fatalf("New with the right password: %v", err)
	}
	kv, err := b.Get(ctx, []string{"/auth"})
	b.Close()
	if err != nil || kv["/auth/k"] != "v" {
		t.Fatalf("Get with the right password = %v, %v", kv, err)
	}

	o.Password = "wrong-" + pass
	b, err = backends.New("etcd", o)
	if err == nil {
		_, err = b.Get(ctx, []string{"/auth"})
		b.Close()
	}
	if !errors.Is(err, backends.ErrAuth) {
		t.Errorf("wrong password: %v, want an error wrapping ErrAuth", err)
	}
	if err != nil && strings.Contains(err.Error(), pass) {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestFromOptions(t *testing.T) {
	t.Setenv("ETCDCTL_PEERS", "")
	c, err := FromOptions("etcd", backends.Options{})
	if err != nil || strings.Join(c.Endpoints, " ") != "http://127.0.0.1:2379" {
		t.Errorf("default: %v, %v", c.Endpoints, err)
	}
	t.Setenv("ETCDCTL_PEERS", "http://a:1,b:2")
	if c, _ = FromOptions("etcd", backends.Options{}); strings.Join(c.Endpoints, " ") != "http://a:1 http://b:2" {
		t.Errorf("ETCDCTL_PEERS: %v", c.Endpoints)
	}
	c, _ = FromOptions("etcd", backends.Options{Nodes: []string{"x:1", "https://y:2"}, ClientCAKeys: "/ca.pem"})
	if strings.Join(c.Endpoints, " ") != "https://x:1 https://y:2" {
		t.Errorf("TLS nodes: %v", c.Endpoints)
	}
	if _, err := FromOptions("etcd", backends.Options{Nodes: []string{"x:1"}, ClientCert: "c.pem"}); !errors.Is(err, backends.ErrConfig) {
		t.Errorf("cert without key: %v, want ErrConfig", err)
	}
	if _, err := FromOptions("etcd", backends.Options{Nodes: []string{"ftp://x:1"}}); !errors.Is(err, backends.ErrConfig) {
		t.Errorf("bad scheme: %v, want ErrConfig", err)
	}
	for _, n := range []string{"h", "h:99999", "h:0", "bad:node:x", "::1", "http://h:1/path", "https://"} {
		if _, err := FromOptions("etcd", backends.Options{Nodes: []string{n}}); !errors.Is(err, backends.ErrConfig) || !strings.Contains(err.Error(), n) {
			t.Errorf("node %q: %v, want a config error naming it", n, err)
		}
	}
	for _, n := range []string{"h:1", "[::1]:2379", "https://h:2379/", "unix:///run/etcd.sock"} {
		if _, err := FromOptions("etcd", backends.Options{Nodes: []string{n}}); err != nil {
			t.Errorf("node %q: %v", n, err)
		}
	}
	if c, _ = FromOptions("etcd", backends.Options{Nodes: []string{"x:1"}, ProbeInterval: 7 * time.Second}); c.ProgressInterval != 7*time.Second {
		t.Errorf("-probe-interval 7s: progress interval %v", c.ProgressInterval)
	}
	c, _ = FromOptions("etcd", backends.Options{Nodes: []string{"x:1"}, Username: "u", Password: "p"})
	if c.Username != "u" || c.Password != "p" {
		t.Errorf("credentials: %q %q", c.Username, c.Password)
	}
}

// TestSRV asks a real DNS server (dnsmasq): confd's _etcd._tcp record comes first, then
// etcd's own _etcd-client-ssl._tcp (with TLS) and _etcd-client._tcp; -scheme (else http or
// https by TLS) prefixes the targets; -srv-record alone is asked when given.
func TestSRV(t *testing.T) {
	d := testservers.DNSDomain
	srv := func(name, target string, port int) testservers.SRV {
		return testservers.SRV{Name: name, Target: target, Port: port, Priority: 10, Weight: 1}
	}
	dns := testservers.DNS(t,
		srv("_etcd._tcp.a."+d, "confd.a", 1), srv("_etcd-client._tcp.a."+d, "client.a", 2),
		srv("_etcd-client-ssl._tcp.b."+d, "ssl.b", 3), srv("_etcd-client._tcp.b."+d, "client.b", 4),
		srv("_etcdv3._tcp.c."+d, "v3.c", 5))
	r := testservers.Resolver(dns)
	for _, tc := range []struct {
		name string
		o    backends.Options
		want string
	}{
		{"etcd", backends.Options{SRVDomain: "a." + d}, "http://confd.a:1"},
		{"etcd", backends.Options{SRVDomain: "a." + d, Scheme: "https"}, "https://confd.a:1"},
		{"etcd", backends.Options{SRVDomain: "b." + d}, "http://client.b:4"},
		{"etcd", backends.Options{SRVDomain: "b." + d, ClientInsecure: true}, "https://ssl.b:3"},
		{"etcdv3", backends.Options{SRVDomain: "c." + d}, "http://v3.c:5"},
		{"etcd", backends.Options{SRVRecord: "_etcd-client._tcp.a." + d, SRVDomain: "b." + d}, "http://client.a:2"},
		{"etcd", backends.Options{SRVDomain: "a." + d, Nodes: []string{"x:1"}}, "http://confd.a:1"},
	} {
		tc.o.Resolver = r
		c, err := FromOptions(tc.name, tc.o)
		if err != nil {
			t.Errorf("%s %+v: %v", tc.name, tc.o, err)
			continue
		}
		if got := strings.Join(c.Endpoints, " "); got != tc.want {
			t.Errorf("%s srv-domain %q srv-record %q: endpoints %s, want %s", tc.name, tc.o.SRVDomain, tc.o.SRVRecord, got, tc.want)
		}
	}
	_, err := FromOptions("etcd", backends.Options{SRVRecord: "_x._tcp.a." + d, Resolver: r})
	if !errors.Is(err, backends.ErrUnavailable) || strings.Count(err.Error(), "srv ") != 1 {
		t.Errorf("unresolvable -srv-record: %v; want ErrUnavailable, that record alone asked", err)
	}
}

// TestWatchFromGetRevision: a write between Get and Watch is not lost: the watch starts after
// the revision Get read.
func TestWatchFromGetRevision(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	b := newClient(t, testConfig(srv))
	if _, err := b.Get(ctxT(t), []string{"/gap"}); err != nil {
		t.Fatalf("Get: %v", err)
	}
	put(t, cli, "/gap/k", "written before Watch started")
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Watch(ctx, []string{"/gap"}, changed) }()
	defer func() { cancel(); <-done }()
	waitSignal(t, changed, "a put made between Get and Watch")
}

// TestWatchAfterClose: closing the client ends Watch with an error (retrying cannot help).
func TestWatchAfterClose(t *testing.T) {
	srv := testservers.Etcd(t)
	b, err := New(testConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Watch(context.Background(), []string{"/closed"}, make(chan struct{}, 1)) }()
	b.Close()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("Watch after Close returned %v, want a closed-client error", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Watch did not return within 15s of Close")
	}
}
