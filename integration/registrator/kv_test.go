package registrator

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/discovery"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// kv reads instances under /services the way discovery does on a key-value store.
type kv interface {
	// get returns key → value under /services (nil when the store does not answer).
	get() map[string]string
}

// has waits until the keys under /services are exactly want.
func has(t *testing.T, s kv, within time.Duration, want ...string) {
	t.Helper()
	sort.Strings(want)
	if want == nil {
		want = []string{}
	}
	testutil.Until(t, within, poll, func() error {
		m := s.get()
		got := []string{}
		for k := range m {
			got = append(got, k)
		}
		sort.Strings(got)
		if m == nil || !reflect.DeepEqual(got, want) {
			return fmt.Errorf("after %v: keys %q, want %q", within, got, want)
		}
		return nil
	})
}

type etcdKV struct{ cli *clientv3.Client }

func (e etcdKV) get() map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := e.cli.Get(ctx, "/services/", clientv3.WithPrefix())
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, kv := range r.Kvs {
		m[string(kv.Key)] = string(kv.Value)
	}
	return m
}

type redisKV struct{ cli *redis.Client }

func (r redisKV) get() map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	keys, err := r.cli.Keys(ctx, "/services/*").Result()
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, k := range keys {
		if v, err := r.cli.Get(ctx, k).Result(); err == nil {
			m[k] = v
		}
	}
	return m
}

type zkKV struct{ conn *zk.Conn }

func (z zkKV) get() map[string]string {
	names, _, err := z.conn.Children("/services")
	if err == zk.ErrNoNode {
		return map[string]string{}
	}
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, n := range names {
		ids, _, err := z.conn.Children("/services/" + n)
		if err != nil {
			continue
		}
		for _, id := range ids {
			if b, _, err := z.conn.Get("/services/" + n + "/" + id); err == nil {
				m["/services/"+n+"/"+id] = string(b)
			}
		}
	}
	return m
}

// checkValue decodes a stored instance as `service "web"` sees it on every store.
func checkValue(t *testing.T, value string, want backends.Service) {
	t.Helper()
	got, err := discovery.Decode(want.Name, want.ID, value)
	if err != nil {
		t.Fatalf("decode %q: %v", value, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("instance %+v, want %+v (value %s)", got, want, value)
	}
}

// TestKV drives `reconf registrator` against etcd, Redis and ZooKeeper: the key convention
// (registrator's "ip:port" value on etcd, JSON with -kv-value json and on the others), lease / key TTL / ephemeral node, deregistration, and the store losing
// the keys or going away.
func TestKV(t *testing.T) {
	w := newWorld(t)
	const wait = 10 * time.Second
	sub := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			t.Cleanup(func() { w.clean(t) })
			f(t)
		})
	}
	want := func(name, id, port string) backends.Service {
		var p int
		fmt.Sscan(port, &p)
		return backends.Service{ID: w.id(name, "8080"), Name: "web", Address: "127.0.0.1", Port: p,
			Tags: []string{"b", "a"}, Meta: map[string]string{"region": "eu"}, Node: w.hostname}
	}
	meta := []string{"SERVICE_TAGS=a,b", "SERVICE_REGION=eu"}

	sub("etcd", func(t *testing.T) {
		srv := testservers.Etcd(t)
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + srv.Addr}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		s := etcdKV{cli}
		uri := "etcd://" + srv.Addr + "/services"
		id1 := w.run(t, ctr{name: "e1", publish: []string{"8080/tcp"}, env: meta})
		p := w.registrator(t, "-ttl", "3", "-ttl-refresh", "1", "-heal", "1s", uri)
		k1 := "/services/web/" + w.id("e1", "8080")
		has(t, s, wait, k1)
		// On etcd the value is registrator's own, "ip:port" (-kv-value json: below).
		if got, want := s.get()[k1], "127.0.0.1:"+w.hostPort(t, id1, "8080/tcp"); got != want {
			t.Errorf("%s = %q, want registrator's %q", k1, got, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := cli.Get(ctx, k1)
		if err != nil || len(r.Kvs) != 1 || r.Kvs[0].Lease == 0 {
			t.Fatalf("%s: no lease (%v, %v)", k1, r, err)
		}
		ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(r.Kvs[0].Lease))
		if err != nil || ttl.GrantedTTL != 3 {
			t.Errorf("lease granted TTL %v (%v), want 3", ttl, err)
		}

		id2 := w.run(t, ctr{name: "e2", publish: []string{"8080/tcp"}})
		k2 := "/services/web/" + w.id("e2", "8080")
		has(t, s, wait, k1, k2)
		// The lease survives refreshes past its TTL.
		consistently(t, 4*time.Second, func() string {
			if len(s.get()) != 2 {
				return fmt.Sprintf("keys changed: %q", s.get())
			}
			return ""
		})
		// Deleted behind reconf's back: restored. Lease revoked: registered again.
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := cli.Delete(ctx, k2); err != nil {
			t.Fatal(err)
		}
		has(t, s, wait, k1, k2)
		if _, err := cli.Revoke(ctx, clientv3.LeaseID(r.Kvs[0].Lease)); err != nil {
			t.Fatal(err)
		}
		has(t, s, wait, k1, k2)
		// The store goes away and comes back.
		srv.Stop(t)
		w.stop(t, id2) // deregistered when etcd answers again
		srv.Start(t)
		has(t, s, 15*time.Second, k1)
		// reconf dies without a word: the lease runs out; a new reconf registers again.
		p.killHard(t)
		has(t, s, wait)
		w.registrator(t, "-ttl", "3", "-ttl-refresh", "1", "-kv-value", "json", uri)
		has(t, s, wait, k1)
		checkValue(t, s.get()[k1], want("e1", "", w.hostPort(t, id1, "8080/tcp")))
		w.stop(t, id1)
		has(t, s, wait)

		// SERVICE_CHECK_* on a store without a catalog: reconf runs the check and keeps the
		// key only while it passes, as Consul's health API would list the instance.
		w.run(t, ctr{name: "ok", publish: []string{"8080/tcp"}, env: []string{"SERVICE_CHECK_HTTP=/", "SERVICE_CHECK_INTERVAL=500ms"}})
		w.run(t, ctr{name: "dead", publish: []string{"9090/tcp"}, env: []string{"SERVICE_CHECK_HTTP=/", "SERVICE_CHECK_INTERVAL=500ms"}})
		w.run(t, ctr{name: "sick", publish: []string{"8080/tcp"}, env: []string{"SERVICE_CHECK_HTTP=/", "SERVICE_CHECK_INTERVAL=500ms", "UNHEALTHY_AFTER=4s"}})
		kOK, kSick := "/services/web/"+w.id("ok", "8080"), "/services/web/"+w.id("sick", "8080")
		has(t, s, wait, kOK, kSick) // "dead" answers nothing on 9090: never listed
		has(t, s, wait, kOK)        // "sick" starts failing: hidden, while its container runs
	})

	sub("redis", func(t *testing.T) {
		srv := testservers.Redis(t)
		cli := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer cli.Close()
		s := redisKV{cli}
		id1 := w.run(t, ctr{name: "r1", publish: []string{"8080/tcp"}, env: meta})
		w.registrator(t, "-ttl", "3", "-ttl-refresh", "1", "-heal", "1s", "redis://"+srv.Addr+"/services")
		k1 := "/services/web/" + w.id("r1", "8080")
		has(t, s, wait, k1)
		checkValue(t, s.get()[k1], want("r1", "", w.hostPort(t, id1, "8080/tcp")))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if ttl, err := cli.PTTL(ctx, k1).Result(); err != nil || ttl <= 0 || ttl > 3*time.Second {
			t.Errorf("%s: TTL %v (%v), want (0, 3s]", k1, ttl, err)
		}
		srv.Stop(t) // redis runs without persistence: it comes back empty
		srv.Start(t)
		has(t, s, wait, k1)
		w.kill(t, id1)
		has(t, s, wait)
	})

	sub("zookeeper", func(t *testing.T) {
		srv := testservers.ZooKeeper(t)
		conn, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogInfo(false))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		s := zkKV{conn}
		id1 := w.run(t, ctr{name: "z1", publish: []string{"8080/tcp"}, env: meta})
		p := w.registrator(t, "-heal", "1s", "zookeeper://"+srv.Addr+"/services")
		k1 := "/services/web/" + w.id("z1", "8080")
		has(t, s, wait, k1)
		checkValue(t, s.get()[k1], want("z1", "", w.hostPort(t, id1, "8080/tcp")))
		if _, st, err := conn.Get(k1); err != nil || st.EphemeralOwner == 0 {
			t.Errorf("%s: not ephemeral (%v)", k1, err)
		}
		id2 := w.run(t, ctr{name: "z2", publish: []string{"8080/tcp"}})
		has(t, s, wait, k1, "/services/web/"+w.id("z2", "8080"))
		w.stop(t, id2)
		has(t, s, wait, k1)
		// Deleted behind reconf's back: restored. ZooKeeper down and back: still there.
		if err := conn.Delete(k1, -1); err != nil {
			t.Fatal(err)
		}
		has(t, s, wait, k1)
		srv.Stop(t)
		srv.Start(t)
		has(t, s, 15*time.Second, k1)
		// Nodes are ephemeral: reconf's session goes with it.
		p.stop(t)
		has(t, s, wait)
	})
}
