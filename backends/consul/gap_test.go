package consul

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// countQueries counts the blocking queries (requests with an index) sent through rt.
type countQueries struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countQueries) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Query().Has("index") {
		c.n.Add(1)
	}
	return c.rt.RoundTrip(req)
}

// A burst of writes to a watched prefix on the real agent: the watch asks again at most once
// per MinQueryGap once QueryBurst queries are spent, not once per write, and its last write
// is still signalled and served by Get.
func TestBurstQueryGap(t *testing.T) {
	srv := testservers.Consul(t)
	w, err := api.NewClient(&api.Config{Address: srv.Addr}) // keeps its connection: writes as fast as the agent takes them
	if err != nil {
		t.Fatal(err)
	}
	kv := w.KV()
	if _, err := kv.Put(&api.KVPair{Key: "gap/k", Value: []byte("init")}, nil); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Address: srv.Addr, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	counted := &countQueries{rt: c.apiConfig.HttpClient.Transport}
	c.apiConfig.HttpClient.Transport = counted

	ctx, cancel := context.WithCancel(t.Context())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, []string{"/gap"}, changed) }()
	defer func() {
		cancel()
		<-done
	}()
	testutil.Eventually(t, 20*time.Second, "the watch in place", func() bool { return signalled(changed) })
	time.Sleep(100 * time.Millisecond) // the bucket refills: the burst starts with QueryBurst tokens

	const writes = 500
	before := counted.n.Load()
	start := time.Now()
	for i := range writes {
		if _, err := kv.Put(&api.KVPair{Key: "gap/k", Value: []byte(strconv.Itoa(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	last := strconv.Itoa(writes - 1)
	testutil.Eventually(t, 10*time.Second, "the last write signalled and served", func() bool {
		if !signalled(changed) {
			return false
		}
		got, err := c.Get(ctx, []string{"/gap"})
		return err == nil && got["/gap/k"] == last
	})
	queries, elapsed := int(counted.n.Load()-before), time.Since(start)
	// Since the burst started: QueryBurst at once, then one per MinQueryGap at most (the gap
	// only grows after QueryGapHold), the last of them waiting for the next change.
	most := QueryBurst + int(elapsed/MinQueryGap) + 1
	t.Logf("%d writes in %v: %d blocking queries over %v (at most %d allowed)", writes, took.Round(time.Millisecond), queries,
		elapsed.Round(time.Millisecond), most)
	if queries > most {
		t.Errorf("%d writes in %v cost %d blocking queries, want at most %d", writes, took.Round(time.Millisecond), queries, most)
	}
}
