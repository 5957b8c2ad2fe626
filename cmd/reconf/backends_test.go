package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"gopkg.in/yaml.v3"

	"github.com/reconf/reconf/internal/testservers"
)

// exampleKV flattens examples/haproxy/data.yaml into absolute keys, as the file backend reads it.
func exampleKV(t *testing.T) map[string]string {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, exampleData)), &doc); err != nil {
		t.Fatal(err)
	}
	kv := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(prefix+"/"+k, e)
			}
		default:
			kv[prefix] = fmt.Sprint(v)
		}
	}
	walk("", doc)
	if len(kv) < 10 {
		t.Fatalf("example data flattened to %d keys", len(kv))
	}
	return kv
}

// The same data in a real etcd gives the same haproxy.cfg, in -onetime and in -watch mode.
func TestExampleOnEtcd(t *testing.T) {
	srv := testservers.Etcd(t)
	put := etcdPutter(t, srv.Addr)
	for k, v := range exampleKV(t) {
		put(k, v)
	}
	// Unrelated keys beside the prefixes must not leak in.
	put("/services-old/x/servers/y", "1.2.3.4:1")

	dest := filepath.Join(t.TempDir(), "haproxy.cfg")
	dir := exampleConfDir(t, dest)
	want := readFile(t, exampleWant)
	r := runBin(t, nil, append(noConfig(t), "-onetime", "-backend", "etcd", "-node", srv.Addr, "-confdir", dir)...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if got := readFile(t, dest); got != want {
		t.Fatalf("haproxy.cfg from etcd differs:\n%s", lineDiff(want, got))
	}

	// Settings from the environment this time, and watching.
	p := startBin(t, bin, []string{"RECONF_BACKEND=etcd", "RECONF_NODES=" + srv.Addr, "RECONF_WATCH=true"},
		append(noConfig(t), "-confdir", dir)...)
	put("/services/web/servers/web-4", "10.0.1.14:8080")
	waitFor(t, "web-4 in haproxy.cfg", 30*time.Second, func() bool {
		b, _ := os.ReadFile(dest)
		return strings.Contains(string(b), "server web-4 10.0.1.14:8080 check")
	})
	haproxyCheck(t, dest)
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}
}

// A real Redis with a password: the password reaches the backend and never the log.
func TestExampleOnRedisWithPassword(t *testing.T) {
	srv := testservers.Redis(t)
	const pw = "s3cret-for-test"
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for k, v := range exampleKV(t) {
		if err := rdb.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.ConfigSet(ctx, "requirepass", pw).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Close()

	dest := filepath.Join(t.TempDir(), "haproxy.cfg")
	dir := exampleConfDir(t, dest)
	cfg := writeFile(t, "reconf.toml", "backend = \"redis\"\nnodes = [\""+srv.Addr+"\"]\nlog_level = \"debug\"\n")

	// Without the password the read fails: exit 1.
	r := runBin(t, nil, "-config-file", cfg, "-onetime", "-confdir", dir)
	if r.code != 1 {
		t.Fatalf("without a password: exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	// With it (from the environment; confd's -client-key spelling works too).
	for _, env := range [][]string{{"RECONF_PASSWORD=" + pw}, {"RECONF_CLIENT_KEY=" + pw}} {
		os.Remove(dest)
		r = runBin(t, env, "-config-file", cfg, "-onetime", "-confdir", dir)
		if r.code != 0 {
			t.Fatalf("%s: exit %d; stderr:\n%s", env[0], r.code, r.stderr)
		}
		if got, want := readFile(t, dest), readFile(t, exampleWant); got != want {
			t.Fatalf("haproxy.cfg from redis differs:\n%s", lineDiff(want, got))
		}
		if strings.Contains(r.stderr+r.stdout, pw) {
			t.Errorf("%s: the password was logged:\n%s", env[0], r.stderr)
		}
		if !strings.Contains(r.stderr, "effective configuration") {
			t.Errorf("no debug log of the effective configuration:\n%s", r.stderr)
		}
	}
}

// etcdPutter returns a put into the etcd at addr that fails t on an error (each put bounded
// by 10 s); its client is closed when t ends.
func etcdPutter(t *testing.T, addr string) func(k, v string) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return func(k, v string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatalf("etcd put %s: %v", k, err)
		}
	}
}
