package cluster

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	consul "github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reconf/reconf/internal/testservers"
)

// store is a cluster with a client per member, through which the writer reaches it.
type store struct {
	name string // the -backend value
	c    *testservers.Cluster
	// nodes are the -node values reconf gets.
	nodes []string
	// cas makes key hold new, through member m, if it holds old ("" for a missing key). It
	// returns nil once the key holds new, also when an earlier attempt whose answer was lost
	// wrote it. A write that arrives late (a frozen member's) cannot overwrite a newer value.
	cas func(ctx context.Context, m int, key, old, new string) error
	// read returns every key under prefix, read through member m (up to date with the leader).
	read func(ctx context.Context, m int, prefix string) (map[string]string, error)
	// watching returns the members that hold reconf's watches (for Consul: that the client
	// agent reconf reads from sends its queries to).
	watching func(ctx context.Context, reconf int) ([]int, error)
}

// args are reconf's flags that select this store.
func (s *store) args() []string {
	args := []string{"-backend", s.name}
	for _, n := range s.nodes {
		args = append(args, "-node", n)
	}
	return args
}

// newStore starts the named cluster of three and its clients.
func newStore(t testing.TB, name string) *store {
	t.Helper()
	switch name {
	case "etcd":
		return etcdStore(t, testservers.EtcdCluster(t, 3))
	case "zookeeper":
		return zkStore(t, testservers.ZooKeeperCluster(t, 3))
	case "consul":
		return consulStore(t, testservers.ConsulCluster(t, 3))
	}
	t.Fatalf("unknown store %q", name)
	return nil
}

func etcdStore(t testing.TB, c *testservers.Cluster) *store {
	t.Helper()
	clis := make([]*clientv3.Client, len(c.Members))
	for i, m := range c.Members {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{"http://" + m.Addr}, DialTimeout: 2 * time.Second, Logger: zap.NewNop(),
		})
		if err != nil {
			t.Fatalf("etcd client: %v", err)
		}
		t.Cleanup(func() { cli.Close() }) // before the cluster stops (cleanups run last first)
		clis[i] = cli
	}
	return &store{
		name: "etcd", c: c, nodes: c.Addrs(),
		cas: func(ctx context.Context, m int, key, old, new string) error {
			cmp := clientv3.Compare(clientv3.Value(key), "=", old)
			if old == "" {
				cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
			}
			resp, err := clis[m].Txn(ctx).If(cmp).Then(clientv3.OpPut(key, new)).Else(clientv3.OpGet(key)).Commit()
			if err != nil {
				return err
			}
			if resp.Succeeded {
				return nil
			}
			return holds(key, rangeValue(resp), old, new)
		},
		read: func(ctx context.Context, m int, prefix string) (map[string]string, error) {
			resp, err := clis[m].Get(ctx, prefix+"/", clientv3.WithPrefix())
			if err != nil {
				return nil, err
			}
			out := map[string]string{}
			for _, kv := range resp.Kvs {
				out[string(kv.Key)] = string(kv.Value)
			}
			return out, nil
		},
		watching: func(ctx context.Context, _ int) ([]int, error) {
			// The writer's clients never watch: the members with watchers hold reconf's.
			var out []int
			var errs []error
			for _, i := range c.Running() {
				n, err := testservers.EtcdMetric(ctx, c.Members[i], "etcd_debugging_mvcc_watcher_total")
				if err != nil {
					errs = append(errs, err)
				}
				if n > 0 {
					out = append(out, i)
				}
			}
			return out, errors.Join(errs...)
		},
	}
}

func rangeValue(resp *clientv3.TxnResponse) string {
	if len(resp.Responses) == 0 {
		return ""
	}
	r := resp.Responses[0].GetResponseRange()
	if r == nil || len(r.Kvs) == 0 {
		return ""
	}
	return string(r.Kvs[0].Value)
}

// holds says whether a key that failed its comparison already holds new (an earlier attempt
// wrote it: nil) or something else (an error, retried).
func holds(key, got, old, new string) error {
	if got == new {
		return nil
	}
	return fmt.Errorf("%s holds %q, not %q (want %q)", key, got, old, new)
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

func zkStore(t testing.TB, c *testservers.Cluster) *store {
	t.Helper()
	conns := make([]*zk.Conn, len(c.Members))
	for i, m := range c.Members {
		conn, _, err := zk.Connect([]string{m.Addr}, 4*time.Second, zk.WithLogger(nopLogger{}), zk.WithLogInfo(false))
		if err != nil {
			t.Fatalf("zookeeper client: %v", err)
		}
		t.Cleanup(conn.Close)
		conns[i] = conn
	}
	acl := zk.WorldACL(zk.PermAll)
	cas := func(conn *zk.Conn, key, old, new string) error {
		// Catch up with the leader first: a follower may not have applied our last write.
		if _, err := conn.Sync(key); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		data, stat, err := conn.Get(key)
		if errors.Is(err, zk.ErrNoNode) {
			if old != "" {
				return fmt.Errorf("%s missing, want %q", key, old)
			}
			if _, err := conn.Create(path.Dir(key), nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return err
			}
			_, err = conn.Create(key, []byte(new), 0, acl)
			return err // ErrNodeExists: retried, and then seen as written
		}
		if err != nil {
			return err
		}
		if string(data) != old {
			return holds(key, string(data), old, new)
		}
		_, err = conn.Set(key, []byte(new), stat.Version)
		return err // ErrBadVersion: retried
	}
	return &store{
		name: "zookeeper", c: c, nodes: c.Addrs(),
		cas: func(ctx context.Context, m int, key, old, new string) error {
			return bounded(ctx, func() error { return cas(conns[m], key, old, new) })
		},
		read: func(ctx context.Context, m int, prefix string) (map[string]string, error) {
			out := map[string]string{}
			err := bounded(ctx, func() error {
				conn := conns[m]
				if _, err := conn.Sync(prefix); err != nil {
					return err
				}
				kids, _, err := conn.Children(prefix)
				if err != nil {
					return err
				}
				for _, k := range kids {
					data, _, err := conn.Get(prefix + "/" + k)
					if err != nil {
						return err
					}
					out[prefix+"/"+k] = string(data)
				}
				return nil
			})
			return out, err
		},
		watching: func(ctx context.Context, _ int) ([]int, error) {
			// The writer's sessions never watch: the servers with watches hold reconf's.
			var out []int
			var errs []error
			for _, i := range c.Running() {
				reply, err := testservers.ZooKeeperCommand(ctx, c.Members[i], "wchs")
				if err != nil {
					errs = append(errs, err)
					continue
				}
				n, _, _ := strings.Cut(reply, " ")
				if v, _ := strconv.Atoi(n); v > 0 {
					out = append(out, i)
				}
			}
			return out, errors.Join(errs...)
		},
	}
}

// bounded runs f (a go-zookeeper call, which takes no context) and gives up when ctx is done;
// f then finishes on its own (the connection's timeouts bound it, Close ends it).
func bounded(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func consulStore(t testing.TB, c *testservers.Cluster) *store {
	t.Helper()
	kvs := make([]*consul.KV, len(c.Members))
	for i, m := range c.Members {
		cfg := consul.DefaultNonPooledConfig()
		cfg.Address = m.Addr
		cli, err := consul.NewClient(cfg)
		if err != nil {
			t.Fatalf("consul client: %v", err)
		}
		t.Cleanup(cfg.Transport.CloseIdleConnections)
		kvs[i] = cli.KV()
	}
	key := func(k string) string { return strings.TrimPrefix(k, "/") }
	return &store{
		name: "consul", c: c, nodes: []string{c.Agent.Addr},
		cas: func(ctx context.Context, m int, k, old, new string) error {
			q := (&consul.QueryOptions{RequireConsistent: true}).WithContext(ctx)
			pair, _, err := kvs[m].Get(key(k), q)
			if err != nil {
				return err
			}
			var index uint64 // 0: create only if missing
			switch {
			case pair == nil && old != "":
				return fmt.Errorf("%s missing, want %q", k, old)
			case pair != nil:
				if string(pair.Value) != old {
					return holds(k, string(pair.Value), old, new)
				}
				index = pair.ModifyIndex
			}
			ok, _, err := kvs[m].CAS(&consul.KVPair{Key: key(k), Value: []byte(new), ModifyIndex: index}, (&consul.WriteOptions{}).WithContext(ctx))
			if err == nil && !ok {
				err = fmt.Errorf("%s: check-and-set lost", k)
			}
			return err
		},
		read: func(ctx context.Context, m int, prefix string) (map[string]string, error) {
			q := (&consul.QueryOptions{RequireConsistent: true}).WithContext(ctx)
			pairs, _, err := kvs[m].List(key(prefix)+"/", q)
			if err != nil {
				return nil, err
			}
			out := map[string]string{}
			for _, p := range pairs {
				out["/"+p.Key] = string(p.Value)
			}
			return out, nil
		},
		watching: func(_ context.Context, _ int) ([]int, error) {
			// reconf talks to the client agent only; the agent forwards its queries over
			// its RPC connection to a server.
			pid := c.Agent.PID()
			if pid == 0 {
				return nil, fmt.Errorf("consul agent not running")
			}
			return c.Connected(pid, "server")
		},
	}
}
