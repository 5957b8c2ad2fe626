package backends_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/reconf/reconf/backends"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scripted is a backend whose Get returns the next of a list of results, repeating the last.
type scripted struct {
	mu      sync.Mutex
	results []any // map[string]string or error
	calls   int
}

func (s *scripted) Get(ctx context.Context, _ []string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.results[min(s.calls, len(s.results)-1)]
	s.calls++
	if err, ok := r.(error); ok {
		return nil, err
	}
	return r.(map[string]string), nil
}

func (s *scripted) Close() error { return nil }

func TestPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := fmt.Errorf("connection refused: %w", backends.ErrUnavailable)
		b := &scripted{results: []any{
			map[string]string{"/a": "1"}, // 1: the first read never signals
			map[string]string{"/a": "1"}, // 2: unchanged
			map[string]string{"/a": "2"}, // 3: changed → signal
			down,                         // 4: failed → no signal, logged
			down,                         // 5: still failing → no signal, not logged again
			map[string]string{"/a": "2"}, // 6: back (same data) → signal
			map[string]string{"/a": "2"}, // 7: unchanged
			map[string]string{},          // 8: key deleted → signal
		}}
		wantSignal := []bool{false, false, true, false, false, true, false, true}
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		changed := make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- backends.Poll(ctx, b, []string{"/a"}, time.Second, changed, log) }()

		for i, want := range wantSignal {
			synctest.Wait() // read i+1 done, Poll waits on its ticker
			got := false
			select {
			case <-changed:
				got = true
			default:
			}
			if got != want {
				t.Errorf("after read %d: signalled %v, want %v", i+1, got, want)
			}
			time.Sleep(time.Second) // fake time: the next tick
		}
		cancel()
		synctest.Wait()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Poll returned %v, want context.Canceled", err)
		}
		if n := strings.Count(logs.String(), "poll failed"); n != 1 {
			t.Errorf("logged %d poll failures, want 1:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "cannot watch; polling") {
			t.Errorf("Poll did not say that it polls:\n%s", logs.String())
		}
	})
}

func TestPollBadInterval(t *testing.T) {
	err := backends.Poll(t.Context(), &scripted{results: []any{map[string]string{}}}, nil, 0, make(chan struct{}, 1), nil)
	if !errors.Is(err, backends.ErrConfig) {
		t.Errorf("Poll with interval 0 returned %v, want ErrConfig", err)
	}
}

func TestNotifyCoalesces(t *testing.T) {
	c := make(chan struct{}, 1)
	for range 5 {
		backends.Notify(c) // must never block
	}
	if len(c) != 1 {
		t.Fatalf("pending signals = %d, want 1", len(c))
	}
	<-c
	backends.Notify(c)
	if len(c) != 1 {
		t.Fatalf("pending signals after a read = %d, want 1", len(c))
	}
}

func TestBackoff(t *testing.T) {
	base, max := 100*time.Millisecond, 5*time.Second
	for _, c := range []struct {
		n    int
		want time.Duration // before jitter
	}{
		{-1, base}, {0, base}, {1, 200 * time.Millisecond}, {2, 400 * time.Millisecond},
		{5, 3200 * time.Millisecond}, {6, max}, {100, max}, {1 << 30, max},
	} {
		for range 200 {
			got := backends.Backoff(c.n, base, max)
			if got > c.want || got < c.want-c.want/5 {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", c.n, got, c.want-c.want/5, c.want)
			}
		}
	}
	// A huge cap must not overflow into a negative wait.
	if got := backends.Backoff(80, time.Second, time.Duration(math.MaxInt64)); got <= 0 {
		t.Errorf("Backoff with a huge cap = %v, want positive", got)
	}
	// Jitter: many clients do not all wait the same.
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[backends.Backoff(3, base, max)] = true
	}
	if len(seen) < 5 {
		t.Errorf("Backoff gave %d distinct waits in 50 draws; want jitter", len(seen))
	}
}

var registryRuns atomic.Int32

func TestRegistry(t *testing.T) {
	name := fmt.Sprintf("registry-test-%d", registryRuns.Add(1)) // unique under -count
	var got backends.Options
	backends.Register(name, func(o backends.Options) (backends.Backend, error) {
		got = o
		if len(o.Nodes) == 0 {
			return nil, fmt.Errorf("no nodes: %w", backends.ErrConfig)
		}
		return &scripted{results: []any{map[string]string{}}}, nil
	})
	if !backends.Known(name) {
		t.Fatalf("Known(%q) = false after Register", name)
	}
	if b, err := backends.New(name, backends.Options{Nodes: []string{"n1"}}); err != nil || b == nil {
		t.Fatalf("New: %v, %v", b, err)
	}
	if got.Nodes[0] != "n1" {
		t.Errorf("the factory saw options %+v", got)
	}
	_, err := backends.New(name, backends.Options{})
	if !errors.Is(err, backends.ErrConfig) || !strings.Contains(err.Error(), "backend "+name) {
		t.Errorf("New with bad options: %v; want ErrConfig naming the backend", err)
	}
	_, err = backends.New("etcd3-nope", backends.Options{})
	if !errors.Is(err, backends.ErrUnknownBackend) || !strings.Contains(err.Error(), name) ||
		!strings.Contains(err.Error(), `"etcd3-nope"`) {
		t.Errorf("New of an unknown name: %v; want ErrUnknownBackend naming it and the known ones", err)
	}
	for _, f := range []func(){
		func() { backends.Register(name, func(backends.Options) (backends.Backend, error) { return nil, nil }) },
		func() { backends.Register(name+"-nil", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Register did not panic on a duplicate name or a nil factory")
				}
			}()
			f()
		}()
	}
}

func TestSRVRecords(t *testing.T) {
	for _, tc := range []struct {
		o     backends.Options
		extra []string
		want  string
	}{
		{backends.Options{}, nil, ""},
		{backends.Options{Nodes: []string{"x:1"}}, nil, ""},
		{backends.Options{SRVDomain: "example.com"}, nil, "_etcd._tcp.example.com."},
		{backends.Options{SRVDomain: "example.com."}, []string{"_etcd-client._tcp"}, "_etcd._tcp.example.com. _etcd-client._tcp.example.com."},
		{backends.Options{SRVDomain: "example.com", SRVRecord: "_x._tcp.example.org"}, []string{"_etcd-client._tcp"}, "_x._tcp.example.org"},
	} {
		if got := strings.Join(tc.o.SRVRecords("etcd", tc.extra...), " "); got != tc.want {
			t.Errorf("%+v %v: %q, want %q", tc.o, tc.extra, got, tc.want)
		}
	}
}

func TestJoinErrors(t *testing.T) {
	if backends.JoinErrors(nil, nil) != nil {
		t.Error("all nil: want nil")
	}
	one := errors.New("one")
	if got := backends.JoinErrors(nil, one); got != one {
		t.Errorf("one error: %v, want it as it is", got)
	}
	err := backends.JoinErrors(fmt.Errorf("a: %w", backends.ErrConfig), nil, fmt.Errorf("b: %w", backends.ErrAuth))
	if err.Error() != "a: invalid backend configuration; b: backend authentication failed" {
		t.Errorf("message %q", err)
	}
	if !errors.Is(err, backends.ErrConfig) || !errors.Is(err, backends.ErrAuth) || errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("errors.Is does not see each error: %v", err)
	}
}

// TestNewNamesBackendOnce: a driver's error that names the driver is not prefixed again.
func TestNewNamesBackendOnce(t *testing.T) {
	backends.Register("named-test", func(backends.Options) (backends.Backend, error) {
		return nil, fmt.Errorf("named-test: %w: bad", backends.ErrConfig)
	})
	backends.Register("anon-test", func(backends.Options) (backends.Backend, error) {
		return nil, fmt.Errorf("%w: bad", backends.ErrConfig)
	})
	if _, err := backends.New("named-test", backends.Options{}); err == nil || err.Error() != "named-test: invalid backend configuration: bad" {
		t.Errorf("named: %v", err)
	}
	if _, err := backends.New("anon-test", backends.Options{}); err == nil || err.Error() != "backend anon-test: invalid backend configuration: bad" || !errors.Is(err, backends.ErrConfig) {
		t.Errorf("anonymous: %v", err)
	}
}
