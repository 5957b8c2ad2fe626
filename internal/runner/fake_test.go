package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
)

// memBackend is an in-memory Backend and Watcher: a unit-test double for scheduling logic,
// not a stand-in for a real store (those are tested with real servers elsewhere).
type memBackend struct {
	mu       sync.Mutex
	kv       map[string]string
	down     bool
	gets     int
	calls    map[string]int // Watch calls per prefix
	active   map[string]int // watches running per prefix
	watchers map[*memWatch]struct{}
}

type memWatch struct {
	prefixes []string
	ch       chan<- struct{}
}

func newMem() *memBackend {
	return &memBackend{kv: map[string]string{}, calls: map[string]int{}, active: map[string]int{},
		watchers: map[*memWatch]struct{}{}}
}

var errDown = fmt.Errorf("mem: %w", backends.ErrUnavailable)

func (m *memBackend) Get(_ context.Context, prefixes []string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	if m.down {
		return nil, errDown
	}
	return backends.Filter(m.kv, backends.Dedupe(prefixes)), nil
}

func (m *memBackend) Close() error { return nil }

// getCount is how many Get calls the backend answered.
func (m *memBackend) getCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *memBackend) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	w := &memWatch{prefixes: prefixes, ch: changed}
	m.mu.Lock()
	for _, p := range prefixes {
		m.calls[p]++
		m.active[p]++
	}
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	for _, p := range prefixes {
		m.active[p]--
	}
	delete(m.watchers, w)
	m.mu.Unlock()
	return ctx.Err()
}

func (m *memBackend) set(key, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv[key] = value
	for w := range m.watchers {
		for _, p := range w.prefixes {
			if backends.UnderPrefix(key, p) {
				backends.Notify(w.ch)
				break
			}
		}
	}
}

func (m *memBackend) setDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}

func (m *memBackend) watchCalls() (total int, per map[string]int, active map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.calls {
		total += n
	}
	return total, maps.Clone(m.calls), maps.Clone(m.active)
}

// pollOnly hides the Watcher of a memBackend (a named field: an embedded one would promote
// Watch).
type pollOnly struct{ m *memBackend }

func (p pollOnly) Get(ctx context.Context, ps []string) (map[string]string, error) {
	return p.m.Get(ctx, ps)
}
func (p pollOnly) Close() error { return nil }

// recorder replaces resource.Sync in scheduling tests: it reads the resource's prefixes and
// remembers how often each resource synced and what it saw last.
type recorder struct {
	mu    sync.Mutex
	count map[string]int
	last  map[string]map[string]string
	fail  map[string]error
	block chan struct{} // when set, a sync waits for it to close
}

func newRecorder() *recorder {
	return &recorder{count: map[string]int{}, last: map[string]map[string]string{}, fail: map[string]error{}}
}

func (rc *recorder) sync(ctx context.Context, res *resource.Resource, b backends.Backend, _ resource.SyncOptions) (resource.Result, error) {
	rc.mu.Lock()
	block := rc.block
	rc.mu.Unlock()
	if block != nil {
		<-block
	}
	kv, err := b.Get(ctx, res.Prefixes())
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err == nil {
		err = rc.fail[res.Name]
	}
	if err != nil {
		return resource.Result{}, fmt.Errorf("resource %s: %w", res.Name, err)
	}
	rc.count[res.Name]++
	rc.last[res.Name] = kv
	return resource.Result{Changed: true, Written: true, RenderTime: time.Microsecond}, nil
}

func (rc *recorder) n(name string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.count[name]
}

func (rc *recorder) value(name, key string) string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.last[name][key]
}

func res(name string, keys ...string) *resource.Resource {
	return &resource.Resource{Name: name, Prefix: "/", Keys: keys, UID: -1, GID: -1}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testRunner builds a runner over b whose syncs go to rc, with fast retries.
func testRunner(t testing.TB, cfg Config, rc *recorder) *Runner {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = quietLog()
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rc != nil {
		r.sync = rc.sync
	}
	r.retryBase, r.retryMax = 5*time.Millisecond, 50*time.Millisecond
	r.pollInterval = 10 * time.Millisecond
	return r
}

// start runs r in the background; the returned func cancels it and waits for Run to return.
func start(t testing.TB, r *Runner) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("Run did not return within 10s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type httpSrv struct {
	t   testing.TB
	url string
}

// newHTTP serves r.Handler on a loopback test server.
func newHTTP(t testing.TB, r *Runner) httpSrv {
	s := httptest.NewServer(r.Handler())
	t.Cleanup(s.Close)
	return httpSrv{t, s.URL}
}

func (s httpSrv) get(path string) (int, string) {
	resp, err := http.Get(s.url + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s httpSrv) body(path string) string { _, b := s.get(path); return b }
