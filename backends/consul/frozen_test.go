package consul

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

// A frozen agent (SIGSTOP) fails Get with backends.ErrUnavailable within the request timeout,
// and a blocking query on it is abandoned as stalled, so the watch signals once the agent
// answers again.
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

	srv.Pause(t)
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume(t)
		}
	}()
	start := time.Now()
	_, err = c.Get(context.Background(), []string{"/frozen"})
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get from a frozen agent: %v, want backends.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("Get from a frozen agent took %v with a 2s request timeout", d)
	}
	// Let the watch's blocking query (1s wait + 2s slack) time out while the agent is frozen.
	time.Sleep(4 * time.Second)
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
}
