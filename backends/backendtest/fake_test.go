package backendtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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
	subs map[chan string]bool // each watch's feed of written keys; "" means "reconnected"
}

func newServer(bug string) *server {
	return &server{bug: bug, kv: map[string]string{}, subs: map[chan string]bool{}}
}

func (s *server) write(key, value string, del bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if del {
		delete(s.kv, key)
	} else {
		s.kv[key] = value
	}
	s.feed(key)
}

// feed tells every watch about key; called with s.mu held.
func (s *server) feed(key string) {
	for c := range s.subs {
		select {
		case c <- key:
		default: // the watch is busy; it will catch up on the next write
		}
	}
}

func (s *server) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
	if !down && s.bug != "noreconnect" {
		s.feed("")
	}
}

// client is the backend under test.
type client struct{ s *server }

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
	out := map[string]string{}
	for k, v := range c.s.kv {
		for _, p := range prefixes {
			match := backends.UnderPrefix(k, p)
			if c.s.bug == "stringprefix" {
				match = strings.HasPrefix(k, p)
			}
			if match && !(c.s.bug == "dropempty" && v == "") {
				out[k] = v
			}
		}
	}
	return out, nil
}

func (c *client) Close() error { return nil }

func (c *client) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	prefixes = backends.Dedupe(prefixes)
	feed := make(chan string, 64)
	c.s.mu.Lock()
	c.s.subs[feed] = true
	c.s.mu.Unlock()
	defer func() {
		c.s.mu.Lock()
		delete(c.s.subs, feed)
		c.s.mu.Unlock()
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
		case k := <-feed:
			if k == "" || c.s.bug == "watchall" {
				backends.Notify(changed)
				continue
			}
			for _, p := range prefixes {
				if backends.UnderPrefix(k, p) {
					backends.Notify(changed)
					break
				}
			}
		}
	}
}

func harness(s *server) backendtest.Harness {
	return backendtest.Harness{
		New:    func(*testing.T) backends.Backend { return &client{s} },
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
	// BACKENDTEST_BUG, appended last, overrides any inherited one.
	if testing.Short() {
		t.Skip("-short: runs the suite seven times")
	}
	bugs := map[string]string{
		"stringprefix":  "TestFake/PathMatching",
		"dropempty":     "TestFake/EmptyValues",
		"watchall":      "TestFake/Watch",
		"nocancel":      "TestFake/WatchCancel",
		"leak":          "TestFake/NoLeak",
		"emptywhendown": "TestFake/Recovery",
		"noreconnect":   "TestFake/Recovery",
	}
	for bug, want := range bugs {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestFake$", "-test.v")
			cmd.Env = append(os.Environ(), "BACKENDTEST_BUG="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a backend with bug %q:\n%s", bug, out)
			}
			if !strings.Contains(string(out), "--- FAIL: "+want+" ") {
				t.Errorf("bug %q: want a failure in %s; output:\n%s", bug, want, out)
			}
		})
	}
}
