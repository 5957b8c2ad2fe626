package zookeeper

import (
	"context"
	"fmt"
	"maps"
	"net"
	"sync/atomic"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
)

// The walk with one request per node (for servers without multiRead) passes the same suite.
func TestConformanceWalk(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backends.Backend {
			c := newClient(t, srv.Addr)
			c.noMulti.Store(true)
			return c
		},
		Put:    func(t *testing.T, k, v string) { st.put(t, k, v) },
		Delete: func(t *testing.T, k string) { st.del(t, k) },
		Stop:   func(t *testing.T) { srv.Stop(t) },
		Start:  func(t *testing.T) { srv.Start(t) },
	})
}

// A tree wider than one multiRead (1,200 folders, 2,600 leaves in one folder) reads the same
// with multiRead as with one request per node, and a second Get reuses the wire session.
func TestGetMultiMatchesWalk(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	acl := zk.WorldACL(zk.PermAll)
	var ops []any
	flush := func() {
		if _, err := st.conn.Multi(ops...); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	st.put(t, "/wide/f", "")
	for i := range 2600 {
		ops = append(ops, &zk.CreateRequest{Path: fmt.Sprintf("/wide/f/k%04d", i), Data: fmt.Appendf(nil, "v%d", i), Acl: acl})
		if len(ops) == 500 {
			flush()
		}
	}
	for i := range 1200 {
		ops = append(ops, &zk.CreateRequest{Path: fmt.Sprintf("/wide/d%04d", i), Acl: acl},
			&zk.CreateRequest{Path: fmt.Sprintf("/wide/d%04d/x", i), Data: []byte("x"), Acl: acl})
		if len(ops) >= 500 {
			flush()
		}
	}
	flush()
	st.put(t, "/wide/d0007", "both") // data and children

	var dials atomic.Int32
	c, err := New(Config{Nodes: []string{srv.Addr}, Logger: quiet, wrapConn: func(nc net.Conn) net.Conn { dials.Add(1); return nc }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Get(context.Background(), []string{"/wide", "/wide/f"})
	if err != nil {
		t.Fatal(err)
	}
	if c.noMulti.Load() {
		t.Fatal("the server's multiRead was not used")
	}
	want, err := c.walkGet(context.Background(), []string{"/wide"})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2600+1200+1 || want["/wide/d0007"] != "both" || want["/wide/f/k2599"] != "v2599" {
		t.Fatalf("walk read %d keys, want %d", len(want), 2600+1200+1)
	}
	if !maps.Equal(got, want) {
		t.Errorf("multiRead read %d keys, the walk %d; they differ", len(got), len(want))
	}
	before := dials.Load()
	again, err := c.Get(context.Background(), []string{"/wide/d0007"})
	if err != nil || len(again) != 2 || again["/wide/d0007/x"] != "x" {
		t.Errorf("second Get = %q, %v", again, err)
	}
	if n := dials.Load() - before; n != 0 {
		t.Errorf("second Get dialled %d connections, want the kept one reused", n)
	}
}
