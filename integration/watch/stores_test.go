package watch

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/internal/testservers"
)

// backendNames are the stores every table runs over, in a fixed order.
var backendNames = []string{"etcd", "consul", "zookeeper", "redis"}

// store is one real server with a client that writes to it through the store's own library.
// Keys are absolute '/'-separated paths as reconf sees them.
type store struct {
	name string // the -backend value
	srv  *testservers.Server
	put  func(ctx context.Context, key, value string) error
	del  func(ctx context.Context, key string) error
}

// args are the reconf flags that select this store.
func (s *store) args() []string { return []string{"-backend", s.name, "-node", s.srv.Addr} }

// writeTimeout bounds one Put or Del including retries (a store that was just restarted may
// refuse writes for a moment: ZooKeeper while it loads, Consul until it elects itself).
const writeTimeout = 30 * time.Second

// Put writes key=value, retrying until writeTimeout.
func (s *store) Put(t *testing.T, key, value string) {
	t.Helper()
	if err := s.retry(func(ctx context.Context) error { return s.put(ctx, key, value) }); err != nil {
		t.Fatalf("%s: put %s: %v", s.name, key, err)
	}
}

// Del deletes key, retrying until writeTimeout.
func (s *store) Del(t *testing.T, key string) {
	t.Helper()
	if err := s.retry(func(ctx context.Context) error { return s.del(ctx, key) }); err != nil {
		t.Fatalf("%s: delete %s: %v", s.name, key, err)
	}
}

func (s *store) retry(f func(ctx context.Context) error) error {
	deadline := time.Now().Add(writeTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Load writes every pair of data with `workers` writers at once (ZooKeeper parents first).
func (s *store) Load(t *testing.T, data map[string]string, workers int) {
	t.Helper()
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ch := make(chan string)
	errs := make(chan error, len(keys))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range ch {
				if err := s.retry(func(ctx context.Context) error { return s.put(ctx, k, data[k]) }); err != nil {
					errs <- fmt.Errorf("%s: put %s: %w", s.name, k, err)
				}
			}
		}()
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// env holds the servers shared by the subtests of one top-level test. Each server starts on
// first use (different servers start concurrently) and stops when the top-level test ends.
type env struct {
	top    *testing.T
	mu     sync.Mutex
	stores map[string]*lazyStore
}

type lazyStore struct {
	once sync.Once
	s    *store // nil if the start failed
}

func newEnv(t *testing.T) *env { return &env{top: t, stores: map[string]*lazyStore{}} }

// get returns the named store, starting its server (and client) if needed. A server that
// cannot start fails the calling test.
func (e *env) get(t *testing.T, name string) *store {
	t.Helper()
	e.mu.Lock()
	l, ok := e.stores[name]
	if !ok {
		l = &lazyStore{}
		e.stores[name] = l
	}
	e.mu.Unlock()
	l.once.Do(func() {
		// The server outlives the subtest that started it: cleanup and data folder belong to
		// the top-level test, failures to the subtest.
		tb := sharedTB{TB: t, owner: e.top}
		switch name {
		case "etcd":
			l.s = etcdStore(tb, testservers.Etcd(tb))
		case "consul":
			l.s = consulStore(tb, testservers.Consul(tb))
		case "zookeeper":
			l.s = zkStore(tb, testservers.ZooKeeper(tb))
		case "redis":
			l.s = redisStore(tb, testservers.Redis(tb))
		default:
			t.Fatalf("unknown store %q", name)
		}
	})
	if l.s == nil {
		t.Fatalf("%s did not start (see the test that started it)", name)
	}
	return l.s
}

// sharedTB is t for failures and logs, and owner for cleanups and temporary folders.
type sharedTB struct {
	testing.TB
	owner *testing.T
}

func (s sharedTB) Cleanup(f func()) { s.owner.Cleanup(f) }
func (s sharedTB) TempDir() string  { return s.owner.TempDir() }

func etcdStore(t testing.TB, srv *testservers.Server) *store {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + srv.Addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() }) // before the server stops (cleanups run last first)
	return &store{
		name: "etcd", srv: srv,
		put: func(ctx context.Context, k, v string) error { _, err := cli.Put(ctx, k, v); return err },
		del: func(ctx context.Context, k string) error { _, err := cli.Delete(ctx, k); return err },
	}
}

func consulStore(t testing.TB, srv *testservers.Server) *store {
	t.Helper()
	cfg := consul.DefaultNonPooledConfig()
	cfg.Address = srv.Addr
	cli, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	kv := cli.KV()
	key := func(k string) string { return strings.TrimPrefix(k, "/") }
	return &store{
		name: "consul", srv: srv,
		put: func(ctx context.Context, k, v string) error {
			_, err := kv.Put(&consul.KVPair{Key: key(k), Value: []byte(v)}, (&consul.WriteOptions{}).WithContext(ctx))
			return err
		},
		del: func(ctx context.Context, k string) error {
			_, err := kv.Delete(key(k), (&consul.WriteOptions{}).WithContext(ctx))
			return err
		},
	}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

func zkStore(t testing.TB, srv *testservers.Server) *store {
	t.Helper()
	conn, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogger(nopLogger{}), zk.WithLogInfo(false))
	if err != nil {
		t.Fatalf("zookeeper client: %v", err)
	}
	t.Cleanup(conn.Close)
	acl := zk.WorldACL(zk.PermAll)
	// go-zookeeper calls take no context: ctx only bounds the retries around them.
	put := func(_ context.Context, k, v string) error {
		var parents []string
		for dir := path.Dir(k); dir != "/"; dir = path.Dir(dir) {
			parents = append([]string{dir}, parents...)
		}
		for _, p := range parents {
			if _, err := conn.Create(p, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return err
			}
		}
		_, err := conn.Set(k, []byte(v), -1)
		if errors.Is(err, zk.ErrNoNode) {
			_, err = conn.Create(k, []byte(v), 0, acl)
			if errors.Is(err, zk.ErrNodeExists) { // a concurrent writer created it
				_, err = conn.Set(k, []byte(v), -1)
			}
		}
		return err
	}
	return &store{
		name: "zookeeper", srv: srv, put: put,
		del: func(_ context.Context, k string) error {
			err := conn.Delete(k, -1)
			if errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			return err
		},
	}
}

func redisStore(t testing.TB, srv *testservers.Server) *store {
	t.Helper()
	cli := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { cli.Close() }) // before the server stops (cleanups run last first)
	return &store{
		name: "redis", srv: srv,
		put: func(ctx context.Context, k, v string) error { return cli.Set(ctx, k, v, 0).Err() },
		del: func(ctx context.Context, k string) error { return cli.Del(ctx, k).Err() },
	}
}
