package consul

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// countConns makes c count its open connections to the agent.
func countConns(c *Client) *atomic.Int64 {
	var open atomic.Int64
	dial := c.transport.DialContext
	c.transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		open.Add(1)
		return &countedConn{Conn: conn, open: &open}, nil
	}
	return &open
}

type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// NetConn lets connAlive see the TCP connection.
func (c *countedConn) NetConn() net.Conn { return c.Conn }

// watchEach runs one Watch per prefix, as the runner does, and returns their signal channels
// once each has signalled that its query is in place.
func watchEach(t *testing.T, c *Client, prefixes []string) []chan struct{} {
	t.Helper()
	out := make([]chan struct{}, len(prefixes))
	for i, p := range prefixes {
		out[i] = watching(t, c, p)
	}
	for i, ch := range out {
		waitSignal(t, ch, "watch "+prefixes[i]+" started")
	}
	return out
}

// loadKeys writes n keys under prefix in transactions of 64.
func loadKeys(t *testing.T, st *api.Client, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i += 64 {
		var ops api.TxnOps
		for j := i; j < min(n, i+64); j++ {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: fmt.Sprintf("%s/k%05d", strings.TrimPrefix(prefix, "/"), j), Value: []byte("x")}})
		}
		retry(t, "load "+prefix, func() error {
			ok, resp, _, err := st.Txn().Txn(ops, nil)
			if err == nil && !ok {
				err = fmt.Errorf("txn rolled back: %v", resp.Errors)
			}
			return err
		})
	}
}

// writeAndCheck writes to each of the given members in turn and asserts that only its watch
// signals and that Get (served from the watch) shows the value. Every member's part of one
// answer is fed before any signal of it is sent, so a signal of another watch that is not
// there when the written one's arrives was not caused by that answer.
func writeAndCheck(t *testing.T, c *Client, st *api.Client, prefixes []string, chans []chan struct{}, writes []int) {
	t.Helper()
	for _, ch := range chans {
		drain0(ch)
	}
	for n, i := range writes {
		v := fmt.Sprintf("v%d", n)
		put(t, st, prefixes[i]+"/k", v)
		waitSignal(t, chans[i], "put "+prefixes[i])
		for j, ch := range chans {
			if j != i && signalled(ch) {
				t.Errorf("a put to %s woke the watch of %s", prefixes[i], prefixes[j])
			}
		}
		if kv, _ := mirroredGet(t, c, prefixes[i]); kv[prefixes[i]+"/k"] != v {
			t.Errorf("Get(%s) after its signal = %q, want k = %q", prefixes[i], kv, v)
		}
	}
}

func folderPrefixes(folder string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s/p%02d", folder, i)
	}
	return out
}

// Issue 14: 50 watches on prefixes under one folder hold one blocking query and one
// connection for it (plus the leader prober's), and each signals only for its own keys.
func TestSharedFolder(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := mirrorClient(t, srv.Addr)
	open := countConns(c)
	prefixes := folderPrefixes("/many", 50)
	for _, p := range prefixes {
		put(t, st, p+"/k", "init")
	}
	put(t, st, "/many/other", "x")
	put(t, st, "/many-sibling/p01/k", "x") // shares the string prefix "many", not the folder
	chans := watchEach(t, c, prefixes)
	testutil.Eventually(t, 10*time.Second, "one blocking query, two connections (the query's and the prober's)", func() bool {
		return c.blocking.Load() == 1 && open.Load() <= 2
	})
	writeAndCheck(t, c, st, prefixes, chans, []int{0, 7, 49, 7, 13, 0, 21, 35})
	// Writes beside the prefixes wake nobody: the put to p03 that follows is answered with
	// (or after) them.
	put(t, st, "/many/other", "y")
	put(t, st, "/many-sibling/p01/k", "y")
	put(t, st, "/many/p010/k", "y") // p01 must not match p010
	writeAndCheck(t, c, st, prefixes, chans, []int{3})
	// A deleted key wakes its own watch only.
	del(t, st, prefixes[5]+"/k")
	waitSignal(t, chans[5], "delete "+prefixes[5])
	for j, ch := range chans {
		if j != 5 && signalled(ch) {
			t.Errorf("a delete under %s woke the watch of %s", prefixes[5], prefixes[j])
		}
	}
	if kv, _ := mirroredGet(t, c, prefixes[5]); len(kv) != 0 {
		t.Errorf("Get(%s) after the delete = %q, want nothing", prefixes[5], kv)
	}
	testutil.Eventually(t, 10*time.Second, "still one blocking query and two connections after the writes", func() bool {
		return c.blocking.Load() == 1 && open.Load() <= 2
	})
}

// Prefixes beside many unrelated keys keep their own queries, and a folder that grows splits
// its shared query; once it shrinks again the prefixes share one query again.
func TestSharedFolderCostly(t *testing.T) {
	lo, hi := mergeRetryMin, mergeRetryMax
	t.Cleanup(func() { mergeRetryMin, mergeRetryMax = lo, hi }) // after the watches ended
	mergeRetryMin, mergeRetryMax = 300*time.Millisecond, 300*time.Millisecond
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := mirrorClient(t, srv.Addr)

	busy := folderPrefixes("/busy", 5)
	loadKeys(t, st, "/busy/noise", MergeMaxKeys+100)
	for _, p := range busy {
		put(t, st, p+"/k", "init")
	}
	chans := watchEach(t, c, busy)
	testutil.Eventually(t, 10*time.Second, "five blocking queries beside the noise", func() bool {
		return c.blocking.Load() == 5
	})
	writeAndCheck(t, c, st, busy, chans, []int{0, 4, 2, 2})

	grow := folderPrefixes("/grow", 3)
	for _, p := range grow {
		put(t, st, p+"/k", "init")
	}
	gchans := watchEach(t, c, grow)
	testutil.Eventually(t, 10*time.Second, "one blocking query for /grow (and five for /busy)", func() bool {
		return c.blocking.Load() == 6
	})
	writeAndCheck(t, c, st, grow, gchans, []int{0, 1, 2})
	loadKeys(t, st, "/grow/noise", 200) // 203 keys > 2×3 + 64
	testutil.Eventually(t, 10*time.Second, "/grow split into three queries", func() bool {
		return c.blocking.Load() == 8
	})
	writeAndCheck(t, c, st, grow, gchans, []int{2, 0, 1})
	retry(t, "delete /grow/noise", func() error {
		_, err := st.KV().DeleteTree("grow/noise/", nil)
		return err
	})
	testutil.Eventually(t, 10*time.Second, "/grow shares one query again", func() bool {
		return c.blocking.Load() == 6
	})
	writeAndCheck(t, c, st, grow, gchans, []int{1, 2, 0})
}

func TestShareCost(t *testing.T) {
	g := &group{members: []*member{{w: &kvWatch{prefix: "/f/a"}}, {w: &kvWatch{prefix: "/f/b"}}}}
	d := data("/f/a/1", "", "/f/a/2", "", "/f/b", "", "/f/c", "")
	for _, tc := range []struct {
		l    listed
		d    *kvData
		want string
	}{
		{listed{raw: 4}, d, ""},
		{listed{raw: 2*3 + mergeSlack}, d, ""},
		{listed{raw: 2*3 + mergeSlack + 1}, d, "twice"},
		{listed{raw: MergeMaxKeys + 1}, d, "MergeMaxKeys"},
		{listed{raw: 4, filtered: true}, d, "token"},
		{listed{raw: 4}, &kvData{keys: d.keys, values: d.values, odd: true}, "path"},
	} {
		got := g.cost(tc.l, tc.d)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("cost(%+v) = %q, want %q", tc.l, got, tc.want)
		}
	}
	// Overlapping members count their keys once.
	g.members = append(g.members, &member{w: &kvWatch{prefix: "/f/a/1"}})
	if got := g.cost(listed{raw: 2*3 + mergeSlack + 1}, d); got == "" {
		t.Error("overlapping members counted twice")
	}
}

// Watches that come and go under one folder: each live one keeps signalling for its own
// writes, two or more share one query, and none is left running when all have ended.
func TestSharedFolderChurn(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := mirrorClient(t, srv.Addr)
	prefixes := folderPrefixes("/churn", 6)
	for _, p := range prefixes {
		put(t, st, p+"/k", "init")
	}
	type live struct {
		cancel  context.CancelFunc
		changed chan struct{}
		done    chan error
	}
	active := map[int]*live{}
	start := func(i int) {
		ctx, cancel := context.WithCancel(context.Background())
		l := &live{cancel: cancel, changed: make(chan struct{}, 1), done: make(chan error, 1)}
		go func() { l.done <- c.Watch(ctx, []string{prefixes[i]}, l.changed) }()
		waitSignal(t, l.changed, "watch "+prefixes[i]+" started")
		active[i] = l
	}
	stop := func(i int) {
		active[i].cancel()
		select {
		case <-active[i].done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Watch(%s) did not return within 5s of cancel", prefixes[i])
		}
		delete(active, i)
	}
	defer func() {
		for i := range active {
			stop(i)
		}
	}()
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		i := rnd.IntN(len(prefixes))
		if active[i] != nil {
			stop(i)
		} else {
			start(i)
		}
		for j, l := range active {
			drain0(l.changed)
			v := fmt.Sprintf("r%d", round)
			put(t, st, prefixes[j]+"/k", v)
			waitSignal(t, l.changed, "put "+prefixes[j])
			if kv, _ := mirroredGet(t, c, prefixes[j]); kv[prefixes[j]+"/k"] != v {
				t.Fatalf("round %d: Get(%s) after its signal = %q, want k = %q", round, prefixes[j], kv, v)
			}
			break
		}
		if len(active) >= 2 {
			testutil.Eventually(t, 10*time.Second, "one blocking query for the live watches", func() bool {
				return c.blocking.Load() == 1
			})
		}
	}
	for i := range active {
		stop(i)
	}
	testutil.Eventually(t, 5*time.Second, "no blocking query left", func() bool { return c.blocking.Load() == 0 })
	c.groups.mu.Lock()
	defer c.groups.mu.Unlock()
	if len(c.groups.m) != 0 {
		t.Errorf("%d groups left after every watch ended", len(c.groups.m))
	}
}
