package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// A frozen agent (SIGSTOP) fails Get with backends.ErrUnavailable: once the watch's last
// answer is older than MirrorTTL, Get asks the agent and times out after the request timeout
// (it never serves the old answer for longer), and a blocking query on it is abandoned as
// stalled, so the watch signals once the agent answers again and Get serves from it again.
func TestFrozenAgent(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	put(t, st, "frozen/k", "v")
	var logs testutil.SyncBuffer
	c, err := New(Config{Address: srv.Addr, Logger: slog.New(slog.NewTextHandler(&logs, nil)), RequestTimeout: 2 * time.Second,
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
	frozenAt := len(logs.String())
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume(t)
		}
	}()
	// MirrorTTL (2s) plus the request timeout (2s), with a wide margin.
	took := testutil.Until(t, 12*time.Second, 50*time.Millisecond, func() error {
		if _, err = c.Get(context.Background(), []string{"/frozen"}); err == nil {
			return errors.New("Get from a frozen agent still answers after 12s")
		}
		return nil
	})
	t.Logf("Get failed %v after the agent froze: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get from a frozen agent: %v, want backends.ErrUnavailable", err)
	}
	// The watch's blocking query (1s wait + 2s slack) times out while the agent is frozen;
	// Get keeps failing meanwhile.
	if _, err := c.Get(context.Background(), []string{"/frozen"}); err == nil {
		t.Error("a second Get from the frozen agent answered")
	}
	testutil.Eventually(t, 15*time.Second, "the watch gives up its blocking query on the frozen agent", func() bool {
		return strings.Contains(logs.String()[frozenAt:], "consul blocking query failed")
	})
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
	testutil.Until(t, 15*time.Second, 20*time.Millisecond, func() error {
		before := c.reads.Load()
		kv, err := c.Get(context.Background(), []string{"/frozen"})
		if err == nil && kv["/frozen/k"] == "v" && c.reads.Load() == before {
			return nil // served from the watch again
		}
		return fmt.Errorf("15s after the agent thawed: Get = %q, %v (served from the watch: %v)", kv, err, c.reads.Load() == before)
	})
}
