package backendtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reconf/reconf/backends"
)

// watch is one running Watch call.
type watch struct {
	changed chan struct{}
	cancel  context.CancelFunc
	done    chan error // receives Watch's return value
	err     error      // set once done was read
	ended   bool
}

// startWatch starts Watch on prefixes; t fails if the backend is not a Watcher. The watch is
// cancelled when the case ends.
func startWatch(t *testing.T, b backends.Backend, prefixes ...string) *watch {
	t.Helper()
	wb, ok := b.(backends.Watcher)
	if !ok {
		t.Fatalf("backend %T does not implement backends.Watcher", b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{changed: make(chan struct{}, 1), cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- wb.Watch(ctx, prefixes, w.changed) }()
	t.Cleanup(func() {
		cancel()
		if !w.ended {
			select {
			case <-w.done:
			case <-time.After(cancelTimeout):
				t.Errorf("Watch(%q) did not return within %v of cancel", prefixes, cancelTimeout)
			}
		}
	})
	return w
}

// wait reports whether a signal arrives within d; it fails t if Watch returned.
func (w *watch) wait(t *testing.T, d time.Duration) bool {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-w.changed:
		return true
	case err := <-w.done:
		w.ended, w.err = true, err
		t.Fatalf("Watch returned early: %v", err)
	case <-timer.C:
	}
	return false
}

// quiet drains signals until none came for settle (start and reconnect signals, and the
// tail of a burst); it fails t if the watch never goes quiet.
func (w *watch) quiet(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(signalTimeout)
	for w.wait(t, settle) {
		if time.Now().After(deadline) {
			t.Fatalf("watch kept signalling for %v with no writes", signalTimeout)
		}
	}
}

// expect fails t unless a signal arrives within signalTimeout.
func (w *watch) expect(t *testing.T, after string) {
	t.Helper()
	if !w.wait(t, signalTimeout) {
		t.Fatalf("no watch signal within %v after %s", signalTimeout, after)
	}
}

// expectNone fails t if a signal arrives within silence.
func (w *watch) expectNone(t *testing.T, after string) {
	t.Helper()
	if w.wait(t, silence) {
		t.Errorf("watch signalled after %s (unrelated to the watched prefixes)", after)
	}
}

// establish proves the watch is in place: it writes key until a write is followed by a
// signal, then drains, and returns the value key holds. Writes made before Watch reached the
// store would be lost, and a start signal alone proves nothing, hence the loop.
func (s *suite) establish(t *testing.T, w *watch, key string) string {
	t.Helper()
	deadline := time.Now().Add(signalTimeout)
	var value string
	for i := 0; ; i++ {
		w.quiet(t)
		value = fmt.Sprint(i)
		s.h.Put(t, key, value)
		if w.wait(t, 2*settle) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch never signalled for writes to %s within %v", key, signalTimeout)
		}
	}
	w.quiet(t)
	return value
}

// cancelAndWait cancels the watch and fails t unless Watch returns ctx.Err() within
// cancelTimeout.
func (w *watch) cancelAndWait(t *testing.T) {
	t.Helper()
	start := time.Now()
	w.cancel()
	select {
	case err := <-w.done:
		w.ended, w.err = true, err
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v after cancel, want context.Canceled", err)
		}
		t.Logf("Watch returned %v after cancel", time.Since(start).Round(time.Millisecond))
	case <-time.After(cancelTimeout):
		w.ended = true // the cleanup need not wait again
		t.Fatalf("Watch did not return within %v of cancel", cancelTimeout)
	}
}

func (s *suite) skipUnlessWatcher(t *testing.T, b backends.Backend) {
	t.Helper()
	if _, ok := b.(backends.Watcher); !ok {
		t.Skipf("backendtest: %T does not implement backends.Watcher: the runner polls it with backends.Poll", b)
	}
}

func (s *suite) watch(t *testing.T) {
	b := s.client(t)
	s.skipUnlessWatcher(t, b)
	app, other := s.prefix("watch", "app"), s.prefix("watch", "second")
	w := startWatch(t, b, app, other)
	s.establish(t, w, app+"/ready")

	s.h.Put(t, app+"/db/host", "one")
	w.expect(t, "a put of a new key under the prefix")
	w.quiet(t)
	s.h.Put(t, app+"/db/host", "two")
	w.expect(t, "an update of a key under the prefix")
	w.quiet(t)
	s.h.Delete(t, app+"/db/host")
	w.expect(t, "a delete under the prefix")
	w.quiet(t)
	s.h.Put(t, other+"/k", "v")
	w.expect(t, "a put under the second watched prefix")
	w.quiet(t)

	for _, k := range []string{
		s.prefix("watch", "app-replica", "k"), // shares the string prefix "…/app"
		s.prefix("watch", "apple"),
		s.prefix("watch", "unrelated", "k"),
	} {
		s.h.Put(t, k, "v")
		w.expectNone(t, "a put of "+k)
		s.h.Delete(t, k)
		w.expectNone(t, "a delete of "+k)
	}

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := b.Get(ctx, []string{app}); err != nil {
		t.Errorf("Get while watching: %v", err)
	}
}

func (s *suite) watchCancel(t *testing.T) {
	b := s.client(t)
	s.skipUnlessWatcher(t, b)
	p := s.prefix("cancel")
	w := startWatch(t, b, p)
	s.establish(t, w, p+"/ready")
	w.cancelAndWait(t)

	// A watch started on a context that is already done returns at once too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- b.(backends.Watcher).Watch(ctx, []string{p}, make(chan struct{}, 1)) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch on a cancelled context returned %v, want context.Canceled", err)
		}
	case <-time.After(cancelTimeout):
		t.Fatalf("Watch on a cancelled context did not return within %v", cancelTimeout)
	}
}

func (s *suite) noLeak(t *testing.T) {
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	for _, f := range s.h.IgnoreGoroutines {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	b := s.h.New(t)
	p := s.prefix("leak")
	s.h.Put(t, p+"/k", "v")
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	_, err := b.Get(ctx, []string{p})
	cancel()
	if err != nil {
		t.Errorf("Get: %v", err)
	}
	if _, ok := b.(backends.Watcher); ok {
		w := startWatch(t, b, p)
		s.establish(t, w, p+"/ready")
		w.cancelAndWait(t)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	var leak error
	if !eventually(10*time.Second, 50*time.Millisecond, func() bool {
		leak = goleak.Find(opts...)
		return leak == nil
	}) {
		t.Errorf("goroutines left 10s after Watch returned and Close: %v", leak)
	}
}

func (s *suite) recovery(t *testing.T) {
	if s.h.Stop == nil {
		t.Skip("backendtest: no server to stop (Harness.Stop is nil)")
	}
	b := s.client(t)
	p := s.prefix("recovery")
	s.h.Put(t, p+"/k", "before")
	wantKV(t, "Get before the stop", get(t, b, p), map[string]string{p + "/k": "before"})
	_, watcher := b.(backends.Watcher)
	var w *watch
	if watcher {
		w = startWatch(t, b, p)
		s.establish(t, w, p+"/ready")
	}

	s.h.Stop(t)
	stopped := true
	t.Cleanup(func() {
		if stopped {
			s.h.Start(t)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	kv, err := b.Get(ctx, []string{p})
	cancel()
	switch {
	case err == nil:
		t.Errorf("Get with the server stopped returned %d keys and no error; want an error wrapping backends.ErrUnavailable", len(kv))
	case !errors.Is(err, backends.ErrUnavailable):
		t.Errorf("Get with the server stopped: %v; want an error wrapping backends.ErrUnavailable", err)
	default:
		t.Logf("Get with the server stopped: %v", err)
	}
	if watcher {
		// Signals while the server is down are allowed; Watch returning is not.
		drainUntil := time.Now().Add(signalTimeout)
		for w.wait(t, settle) && time.Now().Before(drainUntil) {
			continue
		}
	}

	s.h.Start(t)
	stopped = false
	if watcher {
		w.expect(t, "the server came back (the reconnect signal)")
		s.establish(t, w, p+"/ready")
		s.h.Put(t, p+"/k", "after")
		w.expect(t, "a put after the restart")
	} else {
		s.h.Put(t, p+"/k", "after")
	}
	var last error
	ok := eventually(signalTimeout, 100*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		kv, err := b.Get(ctx, []string{p})
		last = err
		return err == nil && kv[p+"/k"] == "after"
	})
	if !ok {
		t.Errorf("the same client did not read fresh data within %v of the restart (last error: %v)", signalTimeout, last)
	}
}
