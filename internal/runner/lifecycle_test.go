package runner

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reconf/reconf/resource"
)

type notes struct {
	mu  sync.Mutex
	log []string
}

func (n *notes) add(s string) { n.mu.Lock(); n.log = append(n.log, s); n.mu.Unlock() }
func (n *notes) Ready()       { n.add("ready") }
func (n *notes) Reloading()   { n.add("reloading") }
func (n *notes) Stopping()    { n.add("stopping") }
func (n *notes) Watchdog()    { n.add("watchdog") }
func (n *notes) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.log, ",")
}

func TestReloadKeepsUnchangedWatches(t *testing.T) {
	b := newMem()
	rc := newRecorder()
	old := []*resource.Resource{res("a", "/a"), res("b", "/b")}
	next := []*resource.Resource{res("a", "/a"), res("c", "/c"), res("d", "/a/sub")}
	n := &notes{}
	r := testRunner(t, Config{Resources: old, Backend: b, Watch: true, Notifier: n,
		Reload: func() ([]*resource.Resource, error) { return next, nil }}, rc)
	start(t, r)
	eventually(t, "initial syncs", syncedAll(rc, old, 1))
	eventually(t, "2 watches", func() bool { _, _, a := b.watchCalls(); return a["/a"] == 1 && a["/b"] == 1 })
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new resources synced", syncedAll(rc, next, 1))
	eventually(t, "/b watch stopped", func() bool { _, _, a := b.watchCalls(); return a["/b"] == 0 && a["/c"] == 1 })
	_, per, active := b.watchCalls()
	if per["/a"] != 1 || active["/a"] != 1 {
		t.Fatalf("watch on /a restarted by reload: calls %v active %v", per, active)
	}
	// a had synced once before the reload, so "new resources synced" may hold before a's
	// re-sync: wait for it.
	eventually(t, "kept resource a re-synced after reload (templates may have changed)", func() bool { return rc.n("a") >= 2 })
	b.set("/a/sub/k", "v") // the kept watch now feeds d as well
	eventually(t, "d re-synced via the kept watch", func() bool { return rc.n("d") >= 2 })
	if got := rc.value("d", "/a/sub/k"); got != "v" {
		t.Fatalf("d saw %q", got)
	}
	if s := n.String(); !strings.HasPrefix(s, "ready,reloading,ready") {
		t.Fatalf("notifier calls %q, want ready,reloading,ready…", s)
	}
}

func TestReloadErrorKeepsOldSet(t *testing.T) {
	b := newMem()
	rc := newRecorder()
	old := []*resource.Resource{res("a", "/a")}
	bad := errors.New("conf.d/x.toml: line 3: bad mode")
	r := testRunner(t, Config{Resources: old, Backend: b, Watch: true,
		Reload: func() ([]*resource.Resource, error) { return nil, bad }}, rc)
	start(t, r)
	eventually(t, "initial sync", syncedAll(rc, old, 1))
	if err := r.Reload(context.Background()); !errors.Is(err, bad) {
		t.Fatalf("Reload = %v, want %v", err, bad)
	}
	eventually(t, "watch", func() bool { _, _, a := b.watchCalls(); return a["/a"] == 1 })
	b.set("/a/k", "1")
	eventually(t, "old set still works", func() bool { return rc.value("a", "/a/k") == "1" })
}

func TestSIGHUPReloads(t *testing.T) {
	b := newMem()
	rc := newRecorder()
	var reloads atomic.Int32
	list := []*resource.Resource{res("a", "/a")}
	r := testRunner(t, Config{Resources: list, Backend: b, Watch: true,
		Reload: func() ([]*resource.Resource, error) { reloads.Add(1); return list, nil }}, rc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.RunWithSignals(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	eventually(t, "initial sync", syncedAll(rc, list, 1)) // the handler is installed by now
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reload on SIGHUP", func() bool { return reloads.Load() == 1 })
}

func TestHungReload(t *testing.T) {
	b := newMem()
	rc := newRecorder()
	unblock := make(chan struct{})
	defer close(unblock) // lets the abandoned Reload goroutines finish before goleak looks
	entered := make(chan struct{}, 2)
	list := []*resource.Resource{res("a", "/a")}
	r := testRunner(t, Config{Resources: list, Backend: b, Watch: true,
		Reload: func() ([]*resource.Resource, error) { entered <- struct{}{}; <-unblock; return nil, nil }}, rc)
	r.reloadTimeout = 50 * time.Millisecond
	stop := start(t, r)
	eventually(t, "initial sync", syncedAll(rc, list, 1))
	if err := r.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("hung Reload = %v, want a timeout", err)
	}
	r.reloadTimeout = time.Hour // now hang for real and cancel during it
	errc := make(chan error, 1)
	go func() { errc <- r.Reload(context.Background()) }()
	<-entered
	<-entered
	if err := stop(); err != nil {
		t.Fatalf("cancel during a hung reload: %v", err)
	}
	if err := <-errc; err == nil {
		t.Fatal("Reload interrupted by shutdown returned nil")
	}
}

func TestRetryUntilStoreUp(t *testing.T) {
	b := newMem()
	b.setDown(true)
	b.kv["/a/k"] = "v"
	rc := newRecorder()
	list := []*resource.Resource{res("a", "/a"), res("z", "/z")}
	rc.fail["z"] = errors.New("render failed") // a failing resource never stops the others
	r := testRunner(t, Config{Resources: list, Backend: b, Watch: true}, rc)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	start(t, r)
	eventually(t, "a few failed reads", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.gets >= 4 })
	code, body := get(t, srv.URL+"/ready")
	if code != 503 || !strings.Contains(body, "backend: down") || !strings.Contains(body, "resource a") {
		t.Fatalf("/ready while down = %d %q", code, body)
	}
	b.setDown(false)
	eventually(t, "a synced after the store came back", func() bool { return rc.value("a", "/a/k") == "v" })
	code, body = get(t, srv.URL+"/ready")
	if code != 503 || strings.Contains(body, "backend") || !strings.Contains(body, "resource z") {
		t.Fatalf("/ready with z failing = %d %q", code, body)
	}
	rc.mu.Lock()
	delete(rc.fail, "z")
	rc.mu.Unlock()
	eventually(t, "ready", func() bool { c, _ := get(t, srv.URL+"/ready"); return c == 200 })
	if c, _ := get(t, srv.URL+"/health"); c != 200 {
		t.Fatalf("/health = %d", c)
	}
	_, m := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`reconf_renders_total{resource="a",result="written"}`,
		`reconf_renders_total{resource="z",result="error"}`,
		`reconf_backend_up{backend="default"} 1`,
		`reconf_backend_errors_total{backend="default"} `,
		`reconf_resources 2`,
		`reconf_last_success_timestamp_seconds{resource="a"}`,
		`reconf_writes_total`,
		`reconf_sync_duration_seconds_count`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, `reconf_backend_errors_total{backend="default"} 0`) {
		t.Errorf("backend errors not counted")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOnetime(t *testing.T) {
	b := newMem()
	rc := newRecorder()
	list := []*resource.Resource{res("a", "/a"), res("bad", "/b"), res("c", "/c")}
	rc.fail["bad"] = errors.New("check_cmd failed")
	r := testRunner(t, Config{Resources: list, Backend: b, Onetime: true}, rc)
	err := r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "resource bad") || strings.Contains(err.Error(), "resource a") {
		t.Fatalf("onetime error = %v", err)
	}
	if rc.n("a") != 1 || rc.n("c") != 1 {
		t.Fatalf("others not synced: a=%d c=%d", rc.n("a"), rc.n("c"))
	}
	b.setDown(true) // store down: fail fast, no retries
	r = testRunner(t, Config{Resources: list, Backend: b, Onetime: true}, rc)
	b.gets = 0
	if err := r.Run(context.Background()); !errors.Is(err, errDown) {
		t.Fatalf("onetime with store down = %v", err)
	}
	if b.gets != 1 { // one shared read of every resource's prefixes, no retries
		t.Fatalf("onetime with store down read %d times, want 1 (no retries)", b.gets)
	}
}

func TestPollWhenBackendCannotWatch(t *testing.T) {
	b := newMem()
	rc := newRecorder()
	list := []*resource.Resource{res("a", "/a"), res("b", "/b")}
	r := testRunner(t, Config{Resources: list, Backend: pollOnly{b}, Watch: true}, rc)
	start(t, r)
	eventually(t, "initial syncs", syncedAll(rc, list, 1))
	// A read after the initial syncs is the poller's: from then on it has the snapshot it
	// compares with. A change made before its first read becomes part of that snapshot and is
	// rendered at the next -interval tick (none here), as a poll's own latency is -interval.
	after := b.getCount()
	eventually(t, "the poller's first read", func() bool { return b.getCount() > after })
	b.set("/a/k", "polled")
	eventually(t, "change seen by polling", func() bool { return rc.value("a", "/a/k") == "polled" })
	if n := rc.n("b"); n != 1 {
		t.Fatalf("b re-synced %d times without a change under /b", n-1)
	}
}

func TestIntervalResyncs(t *testing.T) {
	b := newMem()
	rc := newRecorder()
	list := []*resource.Resource{res("a", "/a")}
	r := testRunner(t, Config{Resources: list, Backend: b, Interval: 10 * time.Millisecond}, rc)
	start(t, r)
	eventually(t, "three interval syncs", func() bool { return rc.n("a") >= 3 })
	if _, per, _ := b.watchCalls(); len(per) != 0 {
		t.Fatalf("interval mode started watches: %v", per)
	}
}

func TestWatchdogAndStopping(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "20000") // pings every 10ms
	b := newMem()
	n := &notes{}
	r := testRunner(t, Config{Resources: []*resource.Resource{res("a", "/a")}, Backend: b, Watch: true, Notifier: n}, newRecorder())
	stop := start(t, r)
	eventually(t, "watchdog pings", func() bool { return strings.Count(n.String(), "watchdog") >= 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := n.String(); !strings.HasPrefix(s, "ready,") || !strings.HasSuffix(s, ",stopping") {
		t.Fatalf("notifier calls %q", s)
	}
}
