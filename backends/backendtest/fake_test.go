package backendtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/backendtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is an in-memory store with watchers, standing in for a real server so that the
// suite itself can be tested. bug names a fault to inject ("" for none).
type server struct {
	bug  string
	mu   sync.Mutex
	kv   map[string]string
	down bool
	subs map[*sub]bool
}

// sub is one watch's feed: the writes since it last looked, in order, and a one-slot wake-up.
// Nothing is dropped, so a watch-fed cache can be exact.
type sub struct {
	events []event // guarded by server.mu
	wake   chan struct{}
}

// event is one write as a watch sees it; an empty key means "reconnected".
type event struct {
	key, value string
	del        bool
}

func newServer(bug string) *server {
	return &server{bug: bug, kv: map[string]string{}, subs: map[*sub]bool{}}
}

func (s *server) write(key, value string, del bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if del {
		delete(s.kv, key)
	} else {
		s.kv[key] = value
	}
	s.feed(event{key: key, value: value, del: del})
}

// feed tells every watch about e; called with s.mu held.
func (s *server) feed(e event) {
	for w := range s.subs {
		w.events = append(w.events, e)
		backends.Notify(w.wake)
	}
}

func (s *server) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
	if !down && s.bug != "noreconnect" {
		s.feed(event{})
	}
}

// match reports whether key is under prefix, with the bugs that change it.
func (s *server) match(key, value, prefix string) bool {
	if s.bug == "dropempty" && value == "" {
		return false
	}
	if s.bug == "stringprefix" {
		return strings.HasPrefix(key, prefix)
	}
	return backends.UnderPrefix(key, prefix)
}

// client is the backend under test. While a Watch runs, Get of the watched prefixes answers
// from a cache the watch keeps, as the etcd, consul and zookeeper drivers do.
type client struct {
	s       *server
	mu      sync.Mutex
	cache   map[string]string // nil when no Watch runs
	watched []string
}

var _ backends.Watcher = (*client)(nil)

func (c *client) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.down {
		if c.s.bug == "emptywhendown" {
			return map[string]string{}, nil
		}
		return nil, fmt.Errorf("fake: %w", backends.ErrUnavailable)
	}
	prefixes = backends.Dedupe(prefixes)
	src := c.s.kv
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache != nil {
		covered := 0
		for _, p := range prefixes {
			if slices.ContainsFunc(c.watched, func(w string) bool { return backends.UnderPrefix(p, w) }) {
				covered++
			}
		}
		// "cache-only": a Get that names any watched prefix answers from the cache alone,
		// losing the prefixes it does not hold.
		if covered == len(prefixes) || (covered > 0 && c.s.bug == "cache-only") {
			src = c.cache
		}
	}
	out := map[string]string{}
	for k, v := range src {
		for _, p := range prefixes {
			if c.s.match(k, v, p) {
				out[k] = v
			}
		}
	}
	return out, nil
}

func (c *client) Close() error { return nil }

// apply writes events into the cache in order; a delete removes the key (unless the bug is
// "lost-delete").
func (c *client) apply(events []event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		return
	}
	for _, e := range events {
		if !e.del {
			c.cache[e.key] = e.value
		} else if c.s.bug != "lost-delete" {
			delete(c.cache, e.key)
		}
	}
}

func (c *client) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	prefixes = backends.Dedupe(prefixes)
	feed := &sub{wake: make(chan struct{}, 1)}
	c.s.mu.Lock()
	c.s.subs[feed] = true
	c.mu.Lock()
	c.cache, c.watched = backends.Filter(c.s.kv, prefixes), prefixes
	c.mu.Unlock()
	c.s.mu.Unlock()
	defer func() {
		c.s.mu.Lock()
		delete(c.s.subs, feed)
		c.s.mu.Unlock()
		c.mu.Lock()
		c.cache, c.watched = nil, nil
		c.mu.Unlock()
	}()
	if c.s.bug == "leak" {
		go func() { time.Sleep(time.Hour) }()
	}
	done := ctx.Done()
	if c.s.bug == "nocancel" {
		done = nil
	}
	for {
		select {
		case <-done:
			return ctx.Err()
		case <-feed.wake:
		}
		c.s.mu.Lock()
		events := feed.events
		feed.events = nil
		c.s.mu.Unlock()
		var mine []event
		signal := false
		for _, e := range events {
			if e.key == "" || c.s.bug == "watchall" {
				signal = true
			}
			if e.key != "" && slices.ContainsFunc(prefixes, func(p string) bool { return backends.UnderPrefix(e.key, p) }) {
				signal = true
				mine = append(mine, e)
			}
		}
		if !signal {
			continue
		}
		if c.s.bug == "signal-before-data" {
			// The signal goes out first; the data lands a second later, and nothing says so.
			backends.Notify(changed)
			time.AfterFunc(time.Second, func() { c.apply(mine) })
			continue
		}
		c.apply(mine)
		backends.Notify(changed)
	}
}

func harness(s *server) backendtest.Harness {
	return backendtest.Harness{
		New:    func(*testing.T) backends.Backend { return &client{s: s} },
		Put:    func(_ *testing.T, k, v string) { s.write(k, v, false) },
		Delete: func(_ *testing.T, k string) { s.write(k, "", true) },
		Stop:   func(*testing.T) { s.setDown(true) },
		Start:  func(*testing.T) { s.setDown(false) },
	}
}

// TestFake runs the suite against the fake; with BACKENDTEST_BUG set it injects that fault
// (TestSuiteCatchesBugs runs it so, in a child process).
func TestFake(t *testing.T) {
	backendtest.Run(t, harness(newServer(os.Getenv("BACKENDTEST_BUG"))))
}

// TestSuiteCatchesBugs checks that the suite fails, in the right case, for each injected
// fault: a suite that cannot fail proves nothing.
func TestSuiteCatchesBugs(t *testing.T) {
	// The children run only TestFake (-test.run), so this never runs in one; each child's
	// BACKENDTEST_BUG, appended last, overrides any inherited one. Each child runs only the
	// case that must catch its bug: TestFake shows that the fake without bugs passes them all.
	if testing.Short() {
		t.Skip("-short: runs a case of the suite once per bug")
	}
	bugs := map[string]string{
		"stringprefix":  backendtest.CasePathMatching,
		"dropempty":     backendtest.CaseEmptyValues,
		"watchall":      backendtest.CaseWatch,
		"nocancel":      backendtest.CaseWatchCancel,
		"leak":          backendtest.CaseNoLeak,
		"emptywhendown": backendtest.CaseRecovery,
		"noreconnect":   backendtest.CaseRecovery,
		// Bugs of watch-fed caches.
		"signal-before-data": backendtest.CaseGetAfterSignal,
		"lost-delete":        backendtest.CaseWatchConverges,
		"cache-only":         backendtest.CaseWatchConverges,
	}
	for bug, c := range bugs {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestFake$/^"+c+"$", "-test.v")
			cmd.Env = append(os.Environ(), "BACKENDTEST_BUG="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a backend with bug %q:\n%s", bug, out)
			}
			if want := "--- FAIL: TestFake/" + c + " "; !strings.Contains(string(out), want) {
				t.Errorf("bug %q: want a failure in TestFake/%s; output:\n%s", bug, c, out)
			}
		})
	}
}
