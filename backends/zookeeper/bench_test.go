package zookeeper

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/internal/testservers"
)

// load creates /bench/gNN/kNNNN: groups × perGroup keys, in multi-ops of 1,000 creates.
func load(b *testing.B, st *store, groups, perGroup int) {
	b.Helper()
	acl := zk.WorldACL(zk.PermAll)
	st.put(b, "/bench", "")
	for g := range groups {
		ops := []any{&zk.CreateRequest{Path: fmt.Sprintf("/bench/g%02d", g), Acl: acl}}
		for k := range perGroup {
			ops = append(ops, &zk.CreateRequest{Path: fmt.Sprintf("/bench/g%02d/k%04d", g, k), Data: []byte(fmt.Sprintf("value %d/%d", g, k)), Acl: acl})
			if len(ops) == 1000 {
				if _, err := st.conn.Multi(ops...); err != nil {
					b.Fatal(err)
				}
				ops = ops[:0]
			}
		}
		if len(ops) > 0 {
			if _, err := st.conn.Multi(ops...); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkGet reads 100,000 keys under one prefix (100 folders of 1,000), and 50 prefixes of
// 1,000 keys each in one Get: with multiRead, and with the walk of one request per node (for
// servers before 3.6) at several numbers of requests in flight and of sessions.
func BenchmarkGet(b *testing.B) {
	srv := testservers.ZooKeeper(b)
	st := newStore(b, srv.Addr)
	load(b, st, 100, 1000)
	fifty := make([]string, 50)
	for i := range fifty {
		fifty[i] = fmt.Sprintf("/bench/g%02d", i)
	}
	for _, bc := range []struct {
		name     string
		prefixes []string
		keys     int
	}{{"100000keys", []string{"/bench"}, 100000}, {"50x1000keys", fifty, 50000}} {
		for _, v := range []struct {
			walk           bool
			conc, sessions int
		}{{false, 0, 0}, {true, DefaultConcurrency, DefaultSessions}, {true, 256, 4}} {
			name := bc.name + "/multiread"
			if v.walk {
				name = fmt.Sprintf("%s/walk/conc%d/sessions%d", bc.name, v.conc, v.sessions)
			}
			b.Run(name, func(b *testing.B) {
				c, err := New(Config{Nodes: []string{srv.Addr}, Logger: quiet, Concurrency: v.conc, Sessions: v.sessions})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				c.noMulti.Store(v.walk)
				for b.Loop() {
					kv, err := c.Get(context.Background(), bc.prefixes)
					if err != nil {
						b.Fatal(err)
					}
					if len(kv) != bc.keys {
						b.Fatalf("got %d keys, want %d", len(kv), bc.keys)
					}
				}
			})
		}
	}
}
