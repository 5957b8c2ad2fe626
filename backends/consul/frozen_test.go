package consul

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

// A frozen agent (SIGSTOP) fails Get with backends.ErrUnavailable: once the watch's last
// answer is older than MirrorTTL, Get asks the agent and times out after the request timeout
// (it never serves the old answer for longer), and a blocking query on it is abandoned as
// stalled, so the watch signals once the agent answers again and Get serves from it again.
func TestFrozenAgent(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	put(t, st, "frozen/k", "v")
	c, err := New(Config{Address: srv.Addr, Logger: quiet, RequestTimeout: 2 * time.Second,
		WaitTime: time.Second, BackoffMax: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(context.Background(), []string{"/frozen"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, []string{"/frozen"}, changed) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
	}()
	select {
	case <-changed: // the watch is in place and its answer is served
	case <-time.After(15 * time.Second):
		t.Fatal("no signal within 15s of the watch starting")
	}

	srv.Pause(t)
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume(t)
		}
	}()
	start := time.Now()
	for {
		_, err = c.Get(context.Background(), []string{"/frozen"})
		if err != nil {
			break
		}
		// MirrorTTL (2s) plus the request timeout (2s), with a wide margin.
		if time.Since(start) > 12*time.Second {
			t.Fatal("Get from a frozen agent still answers after 12s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("Get failed %v after the agent froze: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get from a frozen agent: %v, want backends.ErrUnavailable", err)
	}
	// Let the watch's blocking query (1s wait + 2s slack) time out while the agent is frozen;
	// Get keeps failing meanwhile.
	if _, err := c.Get(context.Background(), []string{"/frozen"}); err == nil {
		t.Error("a second Get from the frozen agent answered")
	}
	time.Sleep(2 * time.Second)
	select {
	case <-changed: // allowed while frozen
	default:
	}
	srv.Resume(t)
	resumed = true
	select {
	case <-changed:
	case err := <-done:
		t.Fatalf("Watch returned: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no signal within 20s of the agent answering again")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		before := c.reads.Load()
		kv, err := c.Get(context.Background(), []string{"/frozen"})
		if err == nil && kv["/frozen/k"] == "v" && c.reads.Load() == before {
			break // served from the watch again
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s after the agent thawed: Get = %q, %v (served from the watch: %v)", kv, err, c.reads.Load() == before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
