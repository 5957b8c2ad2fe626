package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(srv *testservers.Server, db int) Config {
	return Config{
		Nodes:          []Node{{Network: "tcp", Addr: srv.Addr, DB: db}},
		DialTimeout:    time.Second,
		RequestTimeout: 3 * time.Second,
		PingInterval:   time.Second,
		PollInterval:   200 * time.Millisecond,
		BackoffBase:    50 * time.Millisecond,
		BackoffMax:     time.Second,
	}
}

// raw is the store's own client, for writing test data.
func raw(t testing.TB, srv *testservers.Server, db int) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, DB: db, DisableIdentity: true})
	t.Cleanup(func() { rc.Close() })
	return rc
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newClient(t testing.TB, c Config) *Client {
	t.Helper()
	b, err := New(c)
	must(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	srv := testservers.Redis(t)
	rc := raw(t, srv, 0)
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backends.Backend {
			b, err := New(testConfig(srv, 0))
			must(t, err)
			return b
		},
		Put:    func(t *testing.T, k, v string) { must(t, rc.Set(ctxT(t), k, v, 0).Err()) },
		Delete: func(t *testing.T, k string) { must(t, rc.Del(ctxT(t), k).Err()) },
		Stop:   func(t *testing.T) { srv.Stop(t) },
		Start:  func(t *testing.T) { srv.Start(t) },
	})
}

// TestConformanceSeparator runs the suite with confd's -separator ":" (keys held as a:b:c).
func TestConformanceSeparator(t *testing.T) {
	srv := testservers.Redis(t)
	rc := raw(t, srv, 3)
	name := func(k string) string { return strings.ReplaceAll(strings.TrimPrefix(k, "/"), "/", ":") }
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backends.Backend {
			c := testConfig(srv, 3)
			c.Separator = ":"
			b, err := New(c)
			must(t, err)
			return b
		},
		Put:    func(t *testing.T, k, v string) { must(t, rc.Set(ctxT(t), name(k), v, 0).Err()) },
		Delete: func(t *testing.T, k string) { must(t, rc.Del(ctxT(t), name(k)).Err()) },
	})
}

// TestHashes: a hash is a directory of its fields, alone or beside string keys.
func TestHashes(t *testing.T) {
	srv := testservers.Redis(t)
	rc := raw(t, srv, 0)
	ctx := ctxT(t)
	must(t, rc.HSet(ctx, "/app/h", "f1", "v1", "f2", "v2").Err())
	must(t, rc.Set(ctx, "/app/s", "str", 0).Err())
	must(t, rc.HSet(ctx, "/app/dir/h2", "x", "y").Err())
	must(t, rc.RPush(ctx, "/app/list", "ignored").Err())
	must(t, rc.HSet(ctx, "/app-other", "f", "no").Err())
	b := newClient(t, testConfig(srv, 0))
	kv, err := b.Get(ctx, []string{"/app"})
	must(t, err)
	want := map[string]string{"/app/h/f1": "v1", "/app/h/f2": "v2", "/app/s": "str", "/app/dir/h2/x": "y"}
	if fmt.Sprint(kv) != fmt.Sprint(want) {
		t.Errorf("Get(/app) = %v, want %v", kv, want)
	}
	kv, err = b.Get(ctx, []string{"/app/h"}) // the hash itself as the prefix
	must(t, err)
	if len(kv) != 2 || kv["/app/h/f1"] != "v1" {
		t.Errorf("Get(/app/h) = %v", kv)
	}

	// A field change signals a watch on the hash's parent.
	changed := make(chan struct{}, 1)
	stop := startWatch(t, b, []string{"/app"}, changed)
	defer stop()
	waitSignal(t, changed, "the subscription") // the start signal
	must(t, rc.HSet(ctx, "/app/h", "f1", "v1b").Err())
	waitSignal(t, changed, "an HSET")
}

// TestDB: host:port/N reads database N only, and watches its keyspace channel.
func TestDB(t *testing.T) {
	srv := testservers.Redis(t)
	ctx := ctxT(t)
	must(t, raw(t, srv, 0).Set(ctx, "/db/k", "zero", 0).Err())
	rc5 := raw(t, srv, 5)
	must(t, rc5.Set(ctx, "/db/k", "five", 0).Err())
	b, err := backends.New("redis", backends.Options{Nodes: []string{srv.Addr + "/5"}})
	must(t, err)
	defer b.Close()
	kv, err := b.Get(ctx, []string{"/db"})
	if err != nil || kv["/db/k"] != "five" || len(kv) != 1 {
		t.Errorf("Get on db 5 = %v, %v", kv, err)
	}
	changed := make(chan struct{}, 1)
	stop := startWatch(t, b.(backends.Watcher), []string{"/db"}, changed)
	defer stop()
	waitSignal(t, changed, "the subscription")
	must(t, raw(t, srv, 0).Set(ctx, "/db/k", "zero2", 0).Err())
	expectNone(t, changed, "a write to db 0")
	must(t, rc5.Set(ctx, "/db/k", "five2", 0).Err())
	waitSignal(t, changed, "a write to db 5")
}

// TestUnixSocket reads through the server's unix socket, with a database.
func TestUnixSocket(t *testing.T) {
	srv := testservers.Redis(t)
	must(t, raw(t, srv, 2).Set(ctxT(t), "/sock/k", "v", 0).Err())
	b, err := backends.New("redis", backends.Options{Nodes: []string{testservers.RedisSocket(srv) + "/2"}})
	must(t, err)
	defer b.Close()
	kv, err := b.Get(ctxT(t), []string{"/sock"})
	if err != nil || kv["/sock/k"] != "v" {
		t.Errorf("Get over the socket = %v, %v", kv, err)
	}
}

// TestNotifyOff: with keyspace notifications off, Watch warns and polls.
func TestNotifyOff(t *testing.T) {
	srv := testservers.Redis(t)
	rc := raw(t, srv, 0)
	ctx := ctxT(t)
	must(t, rc.ConfigSet(ctx, "notify-keyspace-events", "").Err())
	var logs syncBuffer
	cfg := testConfig(srv, 0)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	b := newClient(t, cfg)
	changed := make(chan struct{}, 1)
	stop := startWatch(t, b, []string{"/off"}, changed)
	defer stop()
	waitLog(t, &logs, "keyspace notifications are off")
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("the fallback was not logged at WARN:\n%s", logs.String())
	}
	must(t, rc.Set(ctx, "/off/k", "v", 0).Err())
	waitSignal(t, changed, "a write seen by polling")
}

// TestACL: a user without CONFIG falls back to polling; a wrong password is ErrAuth and no
// error shows it; confd's -client-key works as the password.
func TestACL(t *testing.T) {
	srv := testservers.Redis(t)
	rc := raw(t, srv, 0)
	ctx := ctxT(t)
	const pass = "s3cret-Pa55"
	must(t, rc.Do(ctx, "ACL", "SETUSER", "limited", "on", ">"+pass, "~*", "&*", "+@all", "-config").Err())
	must(t, rc.Set(ctx, "/acl/k", "v", 0).Err())

	b, err := backends.New("redis", backends.Options{Nodes: []string{srv.Addr}, Username: "limited", ClientKey: pass})
	must(t, err)
	defer b.Close()
	kv, err := b.Get(ctx, []string{"/acl"})
	if err != nil || kv["/acl/k"] != "v" {
		t.Fatalf("Get with -client-key as the password = %v, %v", kv, err)
	}

	var logs syncBuffer
	cfg := testConfig(srv, 0)
	cfg.Username, cfg.Password = "limited", pass
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	changed := make(chan struct{}, 1)
	stop := startWatch(t, newClient(t, cfg), []string{"/acl"}, changed)
	defer stop()
	waitLog(t, &logs, "CONFIG GET refused")

	bad, err := backends.New("redis", backends.Options{Nodes: []string{srv.Addr}, Username: "limited", Password: "wrong-" + pass})
	must(t, err)
	defer bad.Close()
	_, err = bad.Get(ctx, []string{"/acl"})
	if !errors.Is(err, backends.ErrAuth) {
		t.Errorf("wrong password: %v, want ErrAuth", err)
	}
	if err != nil && strings.Contains(err.Error(), pass) {
		t.Errorf("the error shows the password: %v", err)
	}

	// The credentials in a redis:// node are used (the default user now needs a password,
	// so a client that dropped them would fail).
	must(t, rc.Do(ctx, "ACL", "SETUSER", "default", ">default-"+pass).Err())
	anon, err := backends.New("redis", backends.Options{Nodes: []string{srv.Addr}})
	must(t, err)
	defer anon.Close()
	if _, err := anon.Get(ctx, []string{"/acl"}); !errors.Is(err, backends.ErrAuth) {
		t.Fatalf("Get without credentials once the default user has a password: %v, want ErrAuth", err)
	}
	ub, err := backends.New("redis", backends.Options{Nodes: []string{"redis://limited:" + pass + "@" + srv.Addr}})
	must(t, err)
	defer ub.Close()
	if kv, err := ub.Get(ctx, []string{"/acl"}); err != nil || kv["/acl/k"] != "v" {
		t.Fatalf("Get with the credentials in a redis:// node = %v, %v", kv, err)
	}
}

// TestWatchPaused: a frozen server is noticed by the ping; after it thaws the watch
// resubscribes and signals.
func TestWatchPaused(t *testing.T) {
	srv := testservers.Redis(t)
	rc := raw(t, srv, 0)
	var logs syncBuffer
	cfg := testConfig(srv, 0)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	b := newClient(t, cfg)
	changed := make(chan struct{}, 1)
	stop := startWatch(t, b, []string{"/pause"}, changed)
	defer stop()
	waitSignal(t, changed, "the subscription")
	srv.Pause(t)
	waitLog(t, &logs, "no answer to a ping")
	srv.Resume(t)
	waitSignal(t, changed, "the resubscription")
	drain(changed)
	must(t, rc.Set(ctxT(t), "/pause/k", "v", 0).Err())
	waitSignal(t, changed, "a write after the thaw")
}

func TestKeyMapping(t *testing.T) {
	c := &Client{cfg: Config{Separator: ":"}}
	if got := c.toRedis("/app/db/host"); got != "app:db:host" {
		t.Errorf("toRedis = %q", got)
	}
	if got := c.fromRedis("app:db:host"); got != "/app/db/host" {
		t.Errorf("fromRedis = %q", got)
	}
	if got := c.childPattern("/a*b"); got != `a\*b:*` {
		t.Errorf("childPattern = %q", got)
	}
	slash := &Client{cfg: Config{}}
	if slash.toRedis("/app/x") != "/app/x" || slash.fromRedis("app/x") != "/app/x" || slash.childPattern("/") != "/*" {
		t.Error("'/' separator mapping")
	}
}

func TestParseNode(t *testing.T) {
	for in, want := range map[string]Node{
		"127.0.0.1:6379":          {"tcp", "127.0.0.1:6379", 0},
		"h:1/4":                   {"tcp", "h:1", 4},
		"/run/redis.sock":         {"unix", "/run/redis.sock", 0},
		"/run/redis.sock/2":       {"unix", "/run/redis.sock", 2},
		"redis://h:7/3":           {"tcp", "h:7", 3},
		"redis://:pw@h:7/1":       {"tcp", "h:7", 1},
		"unix:///run/r.sock?db=6": {"unix", "/run/r.sock", 6},
	} {
		got, _, err := ParseNode(in)
		if err != nil || got != want {
			t.Errorf("ParseNode(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"nohostport", "bad:node:x", "h:99999", "h:0", ":6379", "h:port", "[::1]:x/2"} {
		if _, _, err := ParseNode(bad); !errors.Is(err, backends.ErrConfig) || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseNode(%q): %v; want a config error naming it", bad, err)
		}
	}
	if n, _, err := ParseNode("[::1]:6379/2"); err != nil || n != (Node{"tcp", "[::1]:6379", 2}) {
		t.Errorf("IPv6 node: %+v, %v", n, err)
	}
	c, err := FromOptions(backends.Options{ClientKey: "pw"})
	if err != nil || c.Password != "pw" || c.Nodes[0].Addr != DefaultNode {
		t.Errorf("confd -client-key as password: %+v, %v", c, err)
	}
	c, _ = FromOptions(backends.Options{ClientCert: "c.pem", ClientKey: "k.pem"})
	if c.Password != "" || c.KeyFile != "k.pem" || !c.TLS {
		t.Errorf("-client-key with -client-cert is the TLS key: %+v", c)
	}
	if _, tlsOn, err := ParseNode("rediss://h:1"); err != nil || !tlsOn {
		t.Errorf("rediss:// = TLS %v, %v", tlsOn, err)
	}
}

func TestMissingFlags(t *testing.T) {
	for flags, want := range map[string]string{"KEA": "", "AK": "", "": "K$hgx", "K$": "hgx", "Ex": "K$hg", "K$hgxe": ""} {
		if got := missingFlags(flags); got != want {
			t.Errorf("missingFlags(%q) = %q, want %q", flags, got, want)
		}
	}
}

func startWatch(t *testing.T, w backends.Watcher, prefixes []string, changed chan struct{}) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Watch(ctx, prefixes, changed) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Watch returned %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return within 5s of cancel")
		}
	}
}

func waitSignal(t *testing.T, changed chan struct{}, after string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatalf("no signal after %s", after)
	}
}

func expectNone(t *testing.T, changed chan struct{}, after string) {
	t.Helper()
	select {
	case <-changed:
		t.Errorf("signal after %s", after)
	case <-time.After(500 * time.Millisecond):
	}
}

func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testutil.SyncBuffer

func TestGroupAncestors(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"/a/b"}, []string{"/a/b"}},
		{[]string{"/a/b/c", "/a/b/d", "/x"}, []string{"/a/b", "/x"}},
		{[]string{"/a/b", "/a-b/c"}, []string{"/a/b", "/a-b/c"}},
		{[]string{"/"}, []string{"/"}},
		{[]string{"/a/x", "/a/y"}, []string{"/a"}},
	} {
		if got := groupAncestors(tc.in); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("groupAncestors(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestWatchAfterClose: closing the client ends Watch with an error (retrying cannot help).
func TestWatchAfterClose(t *testing.T) {
	srv := testservers.Redis(t)
	b, err := New(testConfig(srv, 0))
	must(t, err)
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- b.Watch(context.Background(), []string{"/closed"}, changed) }()
	waitSignal(t, changed, "the subscription")
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
