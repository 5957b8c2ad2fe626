package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// scanCounter is a go-redis hook counting the SCANs a client sends.
type scanCounter struct{ n atomic.Int64 }

func (h *scanCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scanCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *scanCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (h *scanCounter) count(cmd redis.Cmder) {
	if cmd.Name() == "scan" {
		h.n.Add(1)
	}
}

// TestKeyCache: with a live watch, Get serves its prefix without SCAN and follows creations,
// deletions, renames and hashes; after the watch stops it scans again.
func TestKeyCache(t *testing.T) {
	srv := testservers.Redis(t)
	rc := raw(t, srv, 0)
	ctx := ctxT(t)
	must(t, rc.Set(ctx, "/kc/a", "1", 0).Err())
	must(t, rc.Set(ctx, "/kc-other", "no", 0).Err())
	must(t, rc.Set(ctx, "/else/x", "x", 0).Err())
	b := newClient(t, testConfig(srv, 0))
	scans := &scanCounter{}
	b.nodes[0].AddHook(scans)

	changed := make(chan struct{}, 1)
	stop := startWatch(t, b, []string{"/kc"}, changed)
	waitSignal(t, changed, "the subscription") // the key set is built before this signal
	before := scans.n.Load()

	// eventually polls Get(prefix) until it returns want, asserting no SCAN is sent.
	eventually := func(prefix string, want map[string]string, after string) {
		t.Helper()
		testutil.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
			kv, err := b.Get(ctx, []string{prefix})
			must(t, err)
			if fmt.Sprint(kv) != fmt.Sprint(want) {
				return fmt.Errorf("after %s: Get(%s) = %v, want %v", after, prefix, kv, want)
			}
			return nil
		})
		if n := scans.n.Load(); n != before {
			t.Fatalf("after %s: Get sent %d SCANs with a live watch, want 0", after, n-before)
		}
	}
	eventually("/kc", map[string]string{"/kc/a": "1"}, "the watch started")
	must(t, rc.Set(ctx, "/kc/b", "2", 0).Err())
	eventually("/kc", map[string]string{"/kc/a": "1", "/kc/b": "2"}, "a new key")
	must(t, rc.Del(ctx, "/kc/a").Err())
	eventually("/kc", map[string]string{"/kc/b": "2"}, "a delete")
	must(t, rc.Rename(ctx, "/kc/b", "/kc/sub/c").Err())
	eventually("/kc", map[string]string{"/kc/sub/c": "2"}, "a rename")
	must(t, rc.HSet(ctx, "/kc/h", "f", "v").Err())
	eventually("/kc", map[string]string{"/kc/h/f": "v", "/kc/sub/c": "2"}, "a new hash")
	eventually("/kc/sub", map[string]string{"/kc/sub/c": "2"}, "a read below the prefix")
	must(t, rc.FlushDB(ctx).Err()) // no event: the stale names must read as absent
	eventually("/kc", map[string]string{}, "FLUSHDB")

	kv, err := b.Get(ctx, []string{"/else"}) // not covered: scans
	must(t, err)
	if len(kv) != 0 || scans.n.Load() == before {
		t.Errorf("Get(/else) = %v with %d SCANs, want {} and at least one SCAN", kv, scans.n.Load()-before)
	}

	stop()
	must(t, rc.Set(ctx, "/kc/d", "4", 0).Err())
	before = scans.n.Load()
	kv, err = b.Get(ctx, []string{"/kc"})
	must(t, err)
	if fmt.Sprint(kv) != fmt.Sprint(map[string]string{"/kc/d": "4"}) {
		t.Errorf("Get(/kc) after the watch = %v", kv)
	}
	if scans.n.Load() == before {
		t.Error("Get after the watch stopped sent no SCAN")
	}
	b.keys.mu.Lock()
	defer b.keys.mu.Unlock()
	if len(b.keys.sets) != 0 {
		t.Errorf("%d key sets left after Watch returned", len(b.keys.sets))
	}
}

// TestKeyCacheRefresh: a key created without a keyspace event (notifications off for a moment,
// as after a SWAPDB or a replica's resync) is found again by the periodic rescan of the set.
func TestKeyCacheRefresh(t *testing.T) {
	old := keySetRefresh
	keySetRefresh = 200 * time.Millisecond
	t.Cleanup(func() { keySetRefresh = old })
	srv := testservers.Redis(t)
	rc := raw(t, srv, 0)
	ctx := ctxT(t)
	must(t, rc.Set(ctx, "/kr/a", "1", 0).Err())
	cfg := testConfig(srv, 0)
	cfg.PingInterval = 100 * time.Millisecond // the watch loop wakes up to refresh
	b := newClient(t, cfg)
	changed := make(chan struct{}, 1)
	stop := startWatch(t, b, []string{"/kr"}, changed)
	defer stop()
	waitSignal(t, changed, "the subscription")

	must(t, rc.ConfigSet(ctx, "notify-keyspace-events", "").Err())
	must(t, rc.Set(ctx, "/kr/silent", "2", 0).Err())
	must(t, rc.ConfigSet(ctx, "notify-keyspace-events", "KEA").Err())

	testutil.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		kv, err := b.Get(ctx, []string{"/kr"})
		must(t, err)
		if kv["/kr/silent"] != "2" {
			return fmt.Errorf("a key created without an event never reached Get: %v", kv)
		}
		return nil
	})
}
