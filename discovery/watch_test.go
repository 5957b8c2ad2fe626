package discovery

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
)

// catalog is a fake backends.Discoverer.
type catalog struct {
	memBackend
	cmu  sync.Mutex
	svcs map[string][]backends.Service
}

func (c *catalog) Services(_ context.Context, name, tag, dc string) ([]backends.Service, error) {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if dc == "bad" {
		return nil, backends.ErrUnavailable
	}
	return append([]backends.Service(nil), c.svcs[name]...), nil
}

func (c *catalog) ServiceNames(context.Context) (map[string][]string, error) {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	out := map[string][]string{}
	for n := range c.svcs {
		out[n] = nil
	}
	return out, nil
}

func (c *catalog) put(name string, s ...backends.Service) {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	c.svcs[name] = s
}

// watcher is a fake backends.Watcher recording the prefixes it was asked to watch.
type watcher struct {
	memBackend
	got chan []string
}

func (w *watcher) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	w.got <- prefixes
	backends.Notify(changed)
	<-ctx.Done()
	return ctx.Err()
}

func waitSignal(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("no change signal within %v: %s", within, what)
	}
}

func noSignal(t *testing.T, ch <-chan struct{}, during time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("unexpected change signal: %s", what)
	case <-time.After(during):
	}
}

func runWatch(t *testing.T, d *Discovery, changed chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Watch(ctx, changed) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	})
}

func TestWatchDiscovererPolls(t *testing.T) {
	c := &catalog{svcs: map[string][]backends.Service{"web": {{ID: "b"}, {ID: "a"}}}}
	d := New(c, Config{PollInterval: 10 * time.Millisecond})
	svcs, err := d.Service(context.Background(), "web", "", "")
	if err != nil || ids(svcs) != "a,b" {
		t.Fatalf("Service = %q, %v (want sorted by ID)", ids(svcs), err)
	}
	if _, err := d.Service(context.Background(), "web", "", "bad"); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	changed := make(chan struct{}, 1)
	runWatch(t, d, changed)
	noSignal(t, changed, 100*time.Millisecond, "nothing changed")
	c.put("web", backends.Service{ID: "a"})
	waitSignal(t, changed, 5*time.Second, "an instance left")
	noSignal(t, changed, 100*time.Millisecond, "nothing changed since")
}

func TestWatchWatcherUsesPrefix(t *testing.T) {
	w := &watcher{got: make(chan []string, 1)}
	d := New(w, Config{Prefix: "/svc"})
	if _, err := d.Service(context.Background(), "web", "", ""); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 1)
	runWatch(t, d, changed)
	if p := <-w.got; len(p) != 1 || p[0] != "/svc" {
		t.Errorf("watched %v, want [/svc]", p)
	}
	waitSignal(t, changed, 5*time.Second, "the backend signalled")
}

func TestWatchPollsPlainBackend(t *testing.T) {
	b := &memBackend{kv: map[string]string{"/services/web/a": "h:1"}}
	d := New(b, Config{PollInterval: 10 * time.Millisecond})
	changed := make(chan struct{}, 1)
	runWatch(t, d, changed)
	noSignal(t, changed, 100*time.Millisecond, "nothing changed")
	b.set("/services/web/b", "h:2")
	noSignal(t, changed, 100*time.Millisecond, "no template asked for services yet")
	if _, err := d.ServiceNames(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.set("/services/web/c", "h:3")
	waitSignal(t, changed, 5*time.Second, "an instance joined")
}

// perService is a fake Consul: a Discoverer with WatchService.
type perService struct {
	catalog
	started chan string
	fire    chan struct{}
}

func (p *perService) WatchService(ctx context.Context, name, tag, dc string, changed chan<- struct{}) error {
	p.started <- name + "|" + tag + "|" + dc
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.fire:
			backends.Notify(changed)
		}
	}
}

func TestWatchStartsOneWatchPerService(t *testing.T) {
	p := &perService{catalog: catalog{svcs: map[string][]backends.Service{"web": {{ID: "a"}}}},
		started: make(chan string, 4), fire: make(chan struct{})}
	d := New(p, Config{PollInterval: time.Hour}) // a new query must start its watch at once
	changed := make(chan struct{}, 1)
	runWatch(t, d, changed)
	noSignal(t, changed, 50*time.Millisecond, "no service asked for yet")
	if _, err := d.Service(context.Background(), "web", "v2", ""); err != nil {
		t.Fatal(err)
	}
	p.wantStarted(t, "web|v2|", "no WatchService for a service the template asked for")
	p.fire <- struct{}{}
	waitSignal(t, changed, 5*time.Second, "the service watch fired")
	if _, err := d.Service(context.Background(), "web", "v2", ""); err != nil {
		t.Fatal(err)
	}
	p.noSecondWatch(t)
}

// TestWantStartsAWatch: a service read by other means (Want) is watched as if a template had
// asked Service for it.
func TestWantStartsAWatch(t *testing.T) {
	p := &perService{catalog: catalog{svcs: map[string][]backends.Service{"web": {{ID: "a"}}}},
		started: make(chan string, 4), fire: make(chan struct{})}
	d := New(p, Config{PollInterval: time.Hour})
	changed := make(chan struct{}, 1)
	runWatch(t, d, changed)
	d.Want("web", "v2", "dc1")
	p.wantStarted(t, "web|v2|dc1", "no WatchService for a wanted service")
	p.fire <- struct{}{}
	waitSignal(t, changed, 5*time.Second, "the wanted service's watch fired")
	d.Want("web", "v2", "dc1")
	p.noSecondWatch(t)
}

// TestWantNamesPolls: the list of services, once wanted, is polled for changes.
func TestWantNamesPolls(t *testing.T) {
	c := &catalog{svcs: map[string][]backends.Service{"web": {{ID: "a"}}}}
	d := New(c, Config{PollInterval: 10 * time.Millisecond})
	changed := make(chan struct{}, 1)
	runWatch(t, d, changed)
	d.WantNames()
	waitSignal(t, changed, 5*time.Second, "the first poll of the wanted list")
	noSignal(t, changed, 100*time.Millisecond, "nothing changed since")
	c.put("api", backends.Service{ID: "x"})
	waitSignal(t, changed, 5*time.Second, "a service joined the list")
}

// wantStarted waits (up to 5 s) for the next WatchService and checks its query.
func (p *perService) wantStarted(t *testing.T, want, what string) {
	t.Helper()
	select {
	case got := <-p.started:
		if got != want {
			t.Errorf("watching %q, want %s", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal(what)
	}
}

// noSecondWatch fails t if another WatchService starts within 50 ms.
func (p *perService) noSecondWatch(t *testing.T) {
	t.Helper()
	select {
	case got := <-p.started:
		t.Errorf("a second watch for the same query: %q", got)
	case <-time.After(50 * time.Millisecond):
	}
}
