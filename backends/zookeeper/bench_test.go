package zookeeper

import (
	"fmt"
	"path"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
)

// load creates backendtest's benchmark data, in multi-ops of 1,000 creates.
func load(b *testing.B, st *store) {
	b.Helper()
	acl := zk.WorldACL(zk.PermAll)
	st.put(b, "/bench", "")
	for g := range backendtest.BenchGroups {
		ops := []any{&zk.CreateRequest{Path: path.Dir(backendtest.BenchKey(g, 0)), Acl: acl}}
		for k := range backendtest.BenchPerGroup {
			ops = append(ops, &zk.CreateRequest{Path: backendtest.BenchKey(g, k), Data: []byte(backendtest.BenchValue(g, k)), Acl: acl})
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

// BenchmarkGet runs backendtest.BenchGet (100,000 keys under one prefix, 50 prefixes of 1,000
// keys in one Get) with multiRead, and with the walk of one request per node (for servers
// before 3.6) at several numbers of requests in flight and of sessions.
func BenchmarkGet(b *testing.B) {
	srv := testservers.ZooKeeper(b)
	load(b, newStore(b, srv.Addr))
	for _, v := range []struct {
		walk           bool
		conc, sessions int
	}{{false, 0, 0}, {true, DefaultConcurrency, DefaultSessions}, {true, 256, 4}} {
		name := "multiread"
		if v.walk {
			name = fmt.Sprintf("walk/conc%d/sessions%d", v.conc, v.sessions)
		}
		b.Run(name, func(b *testing.B) {
			c, err := New(Config{Nodes: []string{srv.Addr}, Logger: quiet, Concurrency: v.conc, Sessions: v.sessions})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.noMulti.Store(v.walk)
			backendtest.BenchGet(b, c)
		})
	}
}
