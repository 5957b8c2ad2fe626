package ct

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	dep "github.com/hashicorp/consul-template/dependency"
	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/all"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// opTimeout bounds one write, reset or render.
const opTimeout = 10 * time.Second

// consulEnv is a Consul agent with the clients the tests use: the API client that writes the
// cases' data, reconf's consul backend and consul-template's client set.
type consulEnv struct {
	srv     *testservers.Server
	api     *consul.Client
	kv      backends.Backend // reconf's consul backend
	clients *dep.ClientSet   // consul-template's clients
	node    string           // the agent's node name
}

func startConsul(t testing.TB) *consulEnv {
	t.Helper()
	srv := testservers.Consul(t)
	cfg := consul.DefaultNonPooledConfig()
	cfg.Address = srv.Addr
	cli, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	kv, err := backends.New("consul", backends.Options{Nodes: []string{srv.Addr}})
	if err != nil {
		t.Fatalf("reconf consul backend: %v", err)
	}
	t.Cleanup(func() { kv.Close() })
	clients := dep.NewClientSet()
	if err := clients.CreateConsulClient(&dep.CreateConsulClientInput{Address: srv.Addr}); err != nil {
		t.Fatalf("consul-template client set: %v", err)
	}
	t.Cleanup(clients.Stop)
	e := &consulEnv{srv: srv, api: cli, kv: kv, clients: clients}
	testutil.Until(t, 30*time.Second, 50*time.Millisecond, func() error {
		e.node, err = cli.Agent().NodeName()
		if err == nil && e.node == "" {
			err = errors.New("no node name yet")
		}
		return err
	})
	return e
}

// load replaces everything the agent holds (KV, services, other nodes) with the case's data
// and waits until the catalog shows exactly the case's services with their check states.
func (e *consulEnv) load(t testing.TB, c *tcase) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	wo := (&consul.WriteOptions{}).WithContext(ctx)
	qo := (&consul.QueryOptions{}).WithContext(ctx)
	if _, err := e.api.KV().DeleteTree("", wo); err != nil {
		t.Fatalf("consul: delete KV: %v", err)
	}
	svcs, err := e.api.Agent().Services()
	if err != nil {
		t.Fatalf("consul: agent services: %v", err)
	}
	for id := range svcs {
		if err := e.api.Agent().ServiceDeregister(id); err != nil {
			t.Fatalf("consul: deregister %s: %v", id, err)
		}
	}
	nodes, _, err := e.api.Catalog().Nodes(qo)
	if err != nil {
		t.Fatalf("consul: nodes: %v", err)
	}
	for _, n := range nodes {
		if n.Node != e.node {
			if _, err := e.api.Catalog().Deregister(&consul.CatalogDeregistration{Node: n.Node}, wo); err != nil {
				t.Fatalf("consul: deregister node %s: %v", n.Node, err)
			}
		}
	}
	for _, p := range c.kv {
		if _, err := e.api.KV().Put(&consul.KVPair{Key: p.key, Value: []byte(p.value)}, wo); err != nil {
			t.Fatalf("consul: put %s: %v", p.key, err)
		}
	}
	for i := range c.services {
		r := c.services[i]
		if err := e.api.Agent().ServiceRegisterOpts(&r, consul.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
			t.Fatalf("consul: register service %s: %v", r.Name, err)
		}
	}
	for i := range c.catalog {
		r := c.catalog[i]
		if _, err := e.api.Catalog().Register(&r, wo); err != nil {
			t.Fatalf("consul: register node %s: %v", r.Node, err)
		}
	}
	want := e.expected(c)
	testutil.Until(t, opTimeout, 20*time.Millisecond, func() error {
		got, err := e.fingerprint()
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("consul: catalog not settled: have %q, want %q", got, want)
		}
		return nil
	})
}

// put writes one key.
func (e *consulEnv) put(t testing.TB, p kvPair) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := e.api.KV().Put(&consul.KVPair{Key: p.key, Value: []byte(p.value)}, (&consul.WriteOptions{}).WithContext(ctx)); err != nil {
		t.Fatalf("consul: put %s: %v", p.key, err)
	}
}

// fingerprint lists "node/service-id:check-states" for every service instance in the catalog
// (the consul service aside), sorted.
func (e *consulEnv) fingerprint() ([]string, error) {
	names, _, err := e.api.Catalog().Services(nil)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for name := range names {
		if name == "consul" {
			continue
		}
		entries, _, err := e.api.Health().Service(name, "", false, nil)
		if err != nil {
			return nil, err
		}
		for _, en := range entries {
			var st []string
			for _, ch := range en.Checks {
				if ch.ServiceID == en.Service.ID {
					st = append(st, ch.Status)
				}
			}
			sort.Strings(st)
			out = append(out, en.Node.Node+"/"+en.Service.ID+":"+strings.Join(st, ","))
		}
	}
	sort.Strings(out)
	return out, nil
}

// expected is the fingerprint the case's registrations lead to.
func (e *consulEnv) expected(c *tcase) []string {
	out := []string{}
	for _, r := range c.services {
		id := r.ID
		if id == "" {
			id = r.Name
		}
		var st []string
		checks := slices.Clone(r.Checks)
		if r.Check != nil {
			checks = append(checks, r.Check)
		}
		for _, ch := range checks {
			s := ch.Status
			if s == "" {
				s = consul.HealthCritical
			}
			st = append(st, s)
		}
		sort.Strings(st)
		out = append(out, e.node+"/"+id+":"+strings.Join(st, ","))
	}
	for _, r := range c.catalog {
		if r.Service == nil {
			continue
		}
		id := r.Service.ID
		if id == "" {
			id = r.Service.Service
		}
		var st []string
		if r.Check != nil && r.Check.ServiceID == id {
			st = append(st, r.Check.Status)
		}
		for _, ch := range r.Checks {
			if ch.ServiceID == id {
				st = append(st, ch.Status)
			}
		}
		sort.Strings(st)
		out = append(out, r.Node+"/"+id+":"+strings.Join(st, ","))
	}
	sort.Strings(out)
	return out
}

// kvStore is a store reconf reads KV from, with a client that writes the cases' keys to it.
type kvStore struct {
	name    string
	backend backends.Backend
	// load replaces the store's keys with kv.
	load func(ctx context.Context, kv []kvPair) error
	// put adds one key.
	put func(ctx context.Context, p kvPair) error
	// cannot says why kv cannot be written to this store as Consul holds it ("" if it can).
	cannot func(kv []kvPair) string
}

// anyKV: etcd and Redis hold any key Consul holds (with a leading slash).
func anyKV([]kvPair) string { return "" }

// treeKV says why keys cannot be nodes of a tree (ZooKeeper, a YAML file): an empty path
// segment (a folder key "app/" included), or (leafAndFolder) a key that is also a folder.
func treeKV(kv []kvPair, leafAndFolder bool) string {
	keys := map[string]bool{}
	for _, p := range kv {
		keys[p.key] = true
		if slices.Contains(strings.Split(p.key, "/"), "") {
			return fmt.Sprintf("key %q has an empty path segment", p.key)
		}
	}
	for _, p := range kv {
		for dir := path.Dir(p.key); dir != "."; dir = path.Dir(dir) {
			if keys[dir] && !leafAndFolder {
				return fmt.Sprintf("key %q is also the folder of %q", dir, p.key)
			}
		}
	}
	return ""
}

func etcdStore(t testing.TB, srv *testservers.Server) *kvStore {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + srv.Addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	put := func(ctx context.Context, p kvPair) error {
		_, err := cli.Put(ctx, "/"+p.key, p.value)
		return err
	}
	return &kvStore{
		name: "etcd", backend: newBackend(t, "etcd", backends.Options{Nodes: []string{"http://" + srv.Addr}}),
		load: func(ctx context.Context, kv []kvPair) error {
			if _, err := cli.Delete(ctx, "/", clientv3.WithPrefix()); err != nil {
				return err
			}
			return putAll(ctx, kv, put)
		},
		put: put, cannot: anyKV,
	}
}

func redisStore(t testing.TB, srv *testservers.Server) *kvStore {
	t.Helper()
	cli := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { cli.Close() })
	put := func(ctx context.Context, p kvPair) error { return cli.Set(ctx, "/"+p.key, p.value, 0).Err() }
	return &kvStore{
		name: "redis", backend: newBackend(t, "redis", backends.Options{Nodes: []string{srv.Addr}}),
		load: func(ctx context.Context, kv []kvPair) error {
			if err := cli.FlushDB(ctx).Err(); err != nil {
				return err
			}
			return putAll(ctx, kv, put)
		},
		put: put, cannot: anyKV,
	}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

func zkStore(t testing.TB, srv *testservers.Server) *kvStore {
	t.Helper()
	conn, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogger(nopLogger{}), zk.WithLogInfo(false))
	if err != nil {
		t.Fatalf("zookeeper client: %v", err)
	}
	t.Cleanup(conn.Close)
	acl := zk.WorldACL(zk.PermAll)
	put := func(_ context.Context, p kvPair) error {
		k := "/" + p.key
		var parents []string
		for dir := path.Dir(k); dir != "/"; dir = path.Dir(dir) {
			parents = append([]string{dir}, parents...)
		}
		for _, d := range parents {
			if _, err := conn.Create(d, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return fmt.Errorf("create %s: %w", d, err)
			}
		}
		_, err := conn.Set(k, []byte(p.value), -1)
		if errors.Is(err, zk.ErrNoNode) {
			_, err = conn.Create(k, []byte(p.value), 0, acl)
		}
		if err != nil {
			return fmt.Errorf("set %s: %w", k, err)
		}
		return nil
	}
	var del func(p string) error
	del = func(p string) error {
		children, _, err := conn.Children(p)
		if err != nil {
			return err
		}
		for _, ch := range children {
			if err := del(path.Join(p, ch)); err != nil {
				return err
			}
		}
		return conn.Delete(p, -1)
	}
	return &kvStore{
		name: "zookeeper", backend: newBackend(t, "zookeeper", backends.Options{Nodes: []string{srv.Addr}}),
		load: func(ctx context.Context, kv []kvPair) error {
			top, _, err := conn.Children("/")
			if err != nil {
				return err
			}
			for _, ch := range top {
				if ch != "zookeeper" {
					if err := del("/" + ch); err != nil {
						return err
					}
				}
			}
			return putAll(ctx, kv, put)
		},
		put: put,
		cannot: func(kv []kvPair) string {
			if why := treeKV(kv, true); why != "" {
				return why
			}
			// A node with children is a key only when it holds data.
			for _, p := range kv {
				if p.value != "" {
					continue
				}
				for _, q := range kv {
					if strings.HasPrefix(q.key, p.key+"/") {
						return fmt.Sprintf("key %q is empty and has children", p.key)
					}
				}
			}
			return ""
		},
	}
}

// consulKVStore is reconf's own consul backend, without consul-template's queries: it must
// read Consul's KV as consul-template does.
func consulKVStore(e *consulEnv) *kvStore {
	put := func(ctx context.Context, p kvPair) error {
		_, err := e.api.KV().Put(&consul.KVPair{Key: p.key, Value: []byte(p.value)}, (&consul.WriteOptions{}).WithContext(ctx))
		return err
	}
	return &kvStore{
		name: "consul-kv", backend: e.kv,
		load: func(ctx context.Context, kv []kvPair) error {
			if _, err := e.api.KV().DeleteTree("", (&consul.WriteOptions{}).WithContext(ctx)); err != nil {
				return err
			}
			return putAll(ctx, kv, put)
		},
		put: put, cannot: anyKV,
	}
}

// fileStore is the file backend reading one JSON file (nested objects, string values).
func fileStore(t testing.TB) *kvStore {
	t.Helper()
	name := filepath.Join(t.TempDir(), "data.json")
	var mu sync.Mutex
	var held []kvPair
	write := func() error {
		root := map[string]any{}
		for _, p := range held {
			m := root
			parts := strings.Split(p.key, "/")
			for _, part := range parts[:len(parts)-1] {
				sub, ok := m[part].(map[string]any)
				if !ok {
					sub = map[string]any{}
					m[part] = sub
				}
				m = sub
			}
			m[parts[len(parts)-1]] = p.value
		}
		b, err := json.Marshal(root)
		if err != nil {
			return err
		}
		tmp := name + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, name)
	}
	mu.Lock()
	if err := write(); err != nil {
		t.Fatal(err)
	}
	mu.Unlock()
	return &kvStore{
		name: "file", backend: newBackend(t, "file", backends.Options{Files: []string{name}}),
		load: func(_ context.Context, kv []kvPair) error {
			mu.Lock()
			defer mu.Unlock()
			held = slices.Clone(kv)
			return write()
		},
		put: func(_ context.Context, p kvPair) error {
			mu.Lock()
			defer mu.Unlock()
			held = append(held, p)
			return write()
		},
		cannot: func(kv []kvPair) string { return treeKV(kv, false) },
	}
}

func newBackend(t testing.TB, name string, o backends.Options) backends.Backend {
	t.Helper()
	b, err := backends.New(name, o)
	if err != nil {
		t.Fatalf("reconf %s backend: %v", name, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func putAll(ctx context.Context, kv []kvPair, put func(context.Context, kvPair) error) error {
	for _, p := range kv {
		if err := put(ctx, p); err != nil {
			return fmt.Errorf("put %s: %w", p.key, err)
		}
	}
	return nil
}
