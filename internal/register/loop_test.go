package register

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeStore records the calls the loop makes.
type fakeStore struct {
	mu         sync.Mutex
	calls      []string
	refreshErr error
	regErr     error
}

func (f *fakeStore) rec(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeStore) Register(context.Context) error { f.rec("register"); return f.regErr }
func (f *fakeStore) Refresh(context.Context) error  { f.rec("refresh"); return f.refreshErr }
func (f *fakeStore) Down(context.Context) error     { f.rec("down"); return nil }
func (f *fakeStore) Deregister(context.Context) error {
	f.rec("deregister")
	return nil
}
func (f *fakeStore) Close() error { return nil }

func (f *fakeStore) take() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := strings.Join(f.calls, " ")
	f.calls = nil
	return s
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestStepStateMachine(t *testing.T) {
	var healthy bool
	check := func(context.Context) error {
		if healthy {
			return nil
		}
		return errors.New("down")
	}
	cfg := loopConfig{Interval: time.Second, Timeout: time.Second, Failures: 3, Log: quietLog()}
	f := &fakeStore{}
	var s state
	ctx := context.Background()
	steps := []struct {
		healthy bool
		want    string
	}{
		{false, ""},        // never registered while failing from the start
		{true, "register"}, // first pass registers
		{true, "refresh"},  // kept alive
		{false, "refresh"}, // failure 1 of 3: still visible
		{false, "refresh"}, // failure 2 of 3
		{false, "down"},    // failure 3 of 3: taken down
		{false, ""},        // stays down, nothing to do
		{true, "register"}, // passes again: back
		{false, "refresh"}, // the count restarted
		{true, "refresh"},  // a pass resets the count
		{false, "refresh"}, // 1
		{false, "refresh"}, // 2
		{true, "refresh"},  // reset again: never reached 3 in a row
	}
	for i, st := range steps {
		healthy = st.healthy
		s.step(ctx, f, check, cfg)
		if got := f.take(); got != st.want {
			t.Fatalf("step %d (healthy=%v): calls %q, want %q", i, st.healthy, got, st.want)
		}
	}

	// A store that does not answer a keep-alive: the TTL still runs, retry next round.
	f.refreshErr = errors.New("request timed out")
	s.step(ctx, f, check, cfg)
	if got := f.take(); got != "refresh" || !s.registered {
		t.Fatalf("transient keep-alive error: calls %q, registered=%v", got, s.registered)
	}
	// A lost lease or session (Refresh says errGone) registers again at once.
	f.refreshErr = errGone
	s.step(ctx, f, check, cfg)
	if got := f.take(); got != "refresh register" || !s.registered {
		t.Fatalf("lost registration: calls %q, registered=%v", got, s.registered)
	}
	// A store that cannot be reached is retried next round.
	f.regErr = errors.New("unreachable")
	s.step(ctx, f, check, cfg)
	if got := f.take(); got != "refresh register" || s.registered {
		t.Fatalf("unreachable: calls %q, registered=%v", got, s.registered)
	}
	f.refreshErr, f.regErr = nil, nil
	s.step(ctx, f, check, cfg)
	if got := f.take(); got != "register" || !s.registered {
		t.Fatalf("reachable again: calls %q, registered=%v", got, s.registered)
	}
}

func TestStepCheckTimeout(t *testing.T) {
	cfg := loopConfig{Interval: time.Second, Timeout: 20 * time.Millisecond, Failures: 1, Log: quietLog()}
	slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	f := &fakeStore{}
	s := state{registered: true}
	s.step(context.Background(), f, slow, cfg)
	if got := f.take(); got != "down" {
		t.Fatalf("calls %q, want a timed-out check to count as a failure", got)
	}
}

func TestKeepAliveDeregistersOnCancel(t *testing.T) {
	f := &fakeStore{}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := loopConfig{Interval: 5 * time.Millisecond, Timeout: time.Second, Failures: 1, Log: quietLog()}
	done := make(chan error, 1)
	go func() { done <- keepAlive(ctx, f, func(context.Context) error { return nil }, cfg, time.Second) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.calls)
		f.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the loop did not run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("keepAlive: %v", err)
	}
	calls := f.take()
	if !strings.HasPrefix(calls, "register refresh") || !strings.HasSuffix(calls, "deregister") {
		t.Fatalf("calls %q", calls)
	}
}
