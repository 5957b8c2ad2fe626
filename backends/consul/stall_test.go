package consul

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testutil"
)

// heldAgent stands for a client agent whose server froze: while frozen, every request hangs,
// and so do the blocking queries that were waiting when it froze, also after the thaw (the
// agent holds them at the frozen server); requests made after the thaw are answered.
type heldAgent struct {
	mu     sync.Mutex
	value  string
	index  uint64
	wake   chan struct{} // closed at each change
	frozen chan struct{} // closed while frozen
	thawed chan struct{} // closed once thawed
	done   chan struct{} // closed when the test ends: hung requests return
	probes int           // leader probes hung while frozen
	alone  bool          // the datacenter has one server (else three)
	status int           // probes answered (leader and peers requests)
	down   bool          // every request fails with 500 (the agent lost its server)
}

func (a *heldAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	frozen, thawed := a.frozen, a.thawed
	a.mu.Unlock()
	hang := func() {
		select {
		case <-r.Context().Done():
		case <-a.done:
		}
	}
	select {
	case <-frozen:
		select {
		case <-thawed:
		default:
			if strings.HasPrefix(r.URL.Path, "/v1/status/") {
				a.mu.Lock()
				a.probes++
				a.mu.Unlock()
			}
			hang() // sent to the frozen server
			return
		}
	default:
	}
	a.mu.Lock()
	if strings.HasPrefix(r.URL.Path, "/v1/status/") {
		a.status++
	}
	alone, down := a.alone, a.down
	a.mu.Unlock()
	switch {
	case down:
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
		return
	case r.URL.Path == "/v1/status/leader":
		_, _ = w.Write([]byte(`"127.0.0.1:8300"`))
		return
	case r.URL.Path == "/v1/status/peers" && alone:
		_, _ = w.Write([]byte(`["127.0.0.1:8300"]`))
		return
	case r.URL.Path == "/v1/status/peers":
		_, _ = w.Write([]byte(`["127.0.0.1:8300","127.0.0.2:8300","127.0.0.3:8300"]`))
		return
	}
	a.mu.Lock()
	if idx, err := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64); err == nil && idx >= a.index {
		wake := a.wake
		a.mu.Unlock()
		select {
		case <-wake:
		case <-frozen:
			hang() // held at the frozen server, thaw or not
			return
		case <-r.Context().Done():
			return
		}
		a.mu.Lock()
	}
	index, value := a.index, a.value
	a.mu.Unlock()
	w.Header().Set("X-Consul-Index", strconv.FormatUint(index, 10))
	_ = json.NewEncoder(w).Encode([]struct{ Key, Value string }{{"held/k", base64.StdEncoding.EncodeToString([]byte(value))}})
}

func (a *heldAgent) set(v string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.value = v
	a.index++
	close(a.wake)
	a.wake = make(chan struct{})
}

func (a *heldAgent) freeze() {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.frozen)
}

func (a *heldAgent) thaw() {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.thawed)
}

// newHeldAgent returns a heldAgent answering "v1" at index 5; alone: its datacenter has one
// server.
func newHeldAgent(alone bool) *heldAgent {
	return &heldAgent{value: "v1", index: 5, wake: make(chan struct{}), frozen: make(chan struct{}),
		thawed: make(chan struct{}), done: make(chan struct{}), alone: alone}
}

// watchHeld serves a until the test ends and watches /held through it with cfg (its address,
// wait, request timeout and logger filled in), waiting for the watch's first signal. The watch
// is stopped, and must return context.Canceled, when the test ends.
func watchHeld(t *testing.T, a *heldAgent, cfg Config) (*Client, chan struct{}) {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(a.done) })
	cfg.Address, cfg.WaitTime, cfg.RequestTimeout = srv.Listener.Addr().String(), time.Minute, 3*time.Second
	cfg.Logger = slog.New(slog.DiscardHandler)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, []string{"/held"}, changed) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
		c.Close()
	})
	select {
	case <-changed: // in place
	case <-time.After(10 * time.Second):
		t.Fatal("no signal within 10s of the watch starting")
	}
	return c, changed
}

// A blocking query that the agent holds at a frozen server is sent again once the agent
// answers again (its prober saw a probe go unanswered), instead of waiting for the query's own
// deadline (a minute here): the change made meanwhile is signalled and read within seconds.
func TestHeldQuerySentAgain(t *testing.T) {
	a := newHeldAgent(false)
	c, changed := watchHeld(t, a, Config{})
	a.freeze()
	// Until a probe went unanswered for probeStalled: while one is unanswered the prober sends
	// another every probeEvery/4, so the fifth comes after the first waited probeEvery.
	testutil.Eventually(t, 10*time.Second, "five leader probes held by the frozen agent", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.probes >= 5
	})
	a.set("v2") // a write the held query does not report
	select {
	case <-changed:
		t.Fatal("a signal while the agent was frozen")
	default:
	}
	a.thaw()
	thawedAt := time.Now()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no signal within 10s of the thaw: the held query was not sent again")
	}
	kv, err := c.Get(context.Background(), []string{"/held"})
	if err != nil || kv["/held/k"] != "v2" {
		t.Fatalf("Get after the signal: %v, %v; want v2", kv, err)
	}
	t.Logf("the change made while frozen was signalled %v after the thaw", time.Since(thawedAt))
}

// With a single server in the datacenter the prober does not probe every second (there is no
// other server to move to, and no election): after counting the servers it stays quiet while
// the watch's query waits, and a failed query wakes it at once, so that the query is sent
// again as soon as the agent answers.
func TestProberAlone(t *testing.T) {
	a := newHeldAgent(true)
	c, changed := watchHeld(t, a, Config{BackoffBase: 5 * time.Second, BackoffMax: 5 * time.Second})
	status := func() int {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.status
	}
	setDown := func(down bool) {
		a.mu.Lock()
		a.down = down
		a.mu.Unlock()
	}
	testutil.Eventually(t, 10*time.Second, "the prober counting the servers", func() bool {
		c.stall.mu.Lock()
		defer c.stall.mu.Unlock()
		return c.stall.alone
	})
	base := status()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if n := status(); n > base {
			t.Fatalf("%d probes within 3s of finding a single server, want none until a query starts", n-base)
		}
	}
	// The agent loses its server: the blocking query fails and waits out its 5 s backoff
	// unless the prober, woken by the failure, finds the agent answering again first.
	setDown(true)
	a.set("v2") // answers the held query; the next one fails
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal within 5s of a change")
	}
	testutil.Eventually(t, 3*time.Second, "a probe after the query failed", func() bool { return status() > base+1 })
	a.set("v3") // while the query waits out its backoff
	setDown(false)
	back := time.Now()
	select {
	case <-changed:
		t.Logf("the change was signalled %v after the agent answered again", time.Since(back).Round(time.Millisecond))
	case <-time.After(2500 * time.Millisecond):
		t.Fatal("no signal within 2.5s of the agent answering again: the query's 5s backoff was not cut short")
	}
}
