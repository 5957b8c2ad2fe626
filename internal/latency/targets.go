package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	consulapi "github.com/hashicorp/consul/api"
	goredis "github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/consul"
	_ "github.com/reconf/reconf/backends/etcd"
	_ "github.com/reconf/reconf/backends/file"
	_ "github.com/reconf/reconf/backends/redis"
	_ "github.com/reconf/reconf/backends/zookeeper"
	"github.com/reconf/reconf/internal/testservers"
)

// writer puts keys into a store the way an operator's client would.
type writer interface {
	put(ctx context.Context, key, value string) error
	// load writes many keys fast, batched as each store allows (see load.go).
	load(ctx context.Context, kvs []kvPair) error
	// args are the reconf flags that select this store (-backend, -node or -file).
	args() []string
	close()
}

// target starts one backend's server and returns a reconf backend on it plus a writer.
type target struct {
	name  string
	start func(tb *fakeTB) (backends.Backend, writer)
}

var targets = []target{
	{"file", startFile},
	{"etcd", startEtcd},
	{"consul", startConsul},
	{"zookeeper", startZooKeeper},
	{"redis", startRedis},
}

func newBackend(tb *fakeTB, name string, o backends.Options) backends.Backend {
	b, err := backends.New(name, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// ---- file: one JSON file rewritten atomically on every put.

type fileWriter struct {
	mu   sync.Mutex
	file string
	kv   map[string]string
}

func startFile(tb *fakeTB) (backends.Backend, writer) {
	w := &fileWriter{file: filepath.Join(tb.TempDir(), "data.json"), kv: map[string]string{}}
	if err := w.flush(); err != nil {
		tb.Fatal(err)
	}
	return newBackend(tb, "file", backends.Options{Files: []string{w.file}}), w
}

func (w *fileWriter) put(_ context.Context, key, value string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kv[key] = value
	return w.flush()
}

func (w *fileWriter) flush() error {
	tree := map[string]any{}
	for k, v := range w.kv {
		parts := strings.Split(strings.Trim(k, "/"), "/")
		m := tree
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	b, err := json.Marshal(tree)
	if err != nil {
		return err
	}
	tmp := w.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, w.file)
}

func (w *fileWriter) close() {}

// ---- etcd

type etcdWriter struct {
	c    *clientv3.Client
	addr string
}

func startEtcd(tb *fakeTB) (backends.Backend, writer) {
	srv := testservers.Etcd(tb)
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + srv.Addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return newBackend(tb, "etcd", backends.Options{Nodes: []string{srv.Addr}}), etcdWriter{c, srv.Addr}
}

func (w etcdWriter) put(ctx context.Context, key, value string) error {
	_, err := w.c.Put(ctx, key, value)
	return err
}
func (w etcdWriter) close() { _ = w.c.Close() }

// ---- consul

type consulWriter struct {
	c    *consulapi.Client
	kv   *consulapi.KV
	addr string
}

func startConsul(tb *fakeTB) (backends.Backend, writer) {
	srv := testservers.Consul(tb)
	c, err := consulapi.NewClient(&consulapi.Config{Address: srv.Addr})
	if err != nil {
		tb.Fatal(err)
	}
	return newBackend(tb, "consul", backends.Options{Nodes: []string{srv.Addr}}), consulWriter{c, c.KV(), srv.Addr}
}

func (w consulWriter) put(ctx context.Context, key, value string) error {
	_, err := w.kv.Put(&consulapi.KVPair{Key: strings.TrimPrefix(key, "/"), Value: []byte(value)},
		(&consulapi.WriteOptions{}).WithContext(ctx))
	return err
}
func (w consulWriter) close() {}

// ---- zookeeper

type zkWriter struct {
	c    *zk.Conn
	addr string
}

func startZooKeeper(tb *fakeTB) (backends.Backend, writer) {
	srv := testservers.ZooKeeper(tb)
	c, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(nopLogger{}))
	if err != nil {
		tb.Fatal(err)
	}
	return newBackend(tb, "zookeeper", backends.Options{Nodes: []string{srv.Addr}}), zkWriter{c, srv.Addr}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

func (w zkWriter) put(_ context.Context, key, value string) error {
	_, err := w.c.Set(key, []byte(value), -1)
	if !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	// create the parents, then the node
	parts := strings.Split(strings.Trim(key, "/"), "/")
	cur := ""
	for _, p := range parts[:len(parts)-1] {
		cur += "/" + p
		if _, err := w.c.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", cur, err)
		}
	}
	_, err = w.c.Create(key, []byte(value), 0, zk.WorldACL(zk.PermAll))
	return err
}
func (w zkWriter) close() { w.c.Close() }

// ---- redis (keys as confd stores them: the path itself, '/' separator)

type redisWriter struct {
	c    *goredis.Client
	addr string
}

func startRedis(tb *fakeTB) (backends.Backend, writer) {
	srv := testservers.Redis(tb)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	return newBackend(tb, "redis", backends.Options{Nodes: []string{srv.Addr}}), redisWriter{c, srv.Addr}
}

func (w redisWriter) put(ctx context.Context, key, value string) error {
	return w.c.Set(ctx, key, value, 0).Err()
}
func (w redisWriter) close() { _ = w.c.Close() }
