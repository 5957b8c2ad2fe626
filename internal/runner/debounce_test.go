package runner

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reconf/reconf/resource"
)

// waitAfter runs d.wait with signals sent at the given offsets and returns when it returned,
// measured from the first signal (which the caller of wait has already consumed).
func waitAfter(t *testing.T, d debouncer, offsets ...time.Duration) time.Duration {
	t.Helper()
	var took time.Duration
	synctest.Test(t, func(t *testing.T) {
		more := make(chan struct{}, 1)
		go func() {
			start := time.Now()
			for _, o := range offsets {
				time.Sleep(o - time.Since(start))
				more <- struct{}{}
			}
		}()
		start := time.Now()
		if !d.wait(context.Background(), more) {
			t.Fatal("wait returned false")
		}
		took = time.Since(start)
		synctest.Wait()
	})
	return took
}

func TestDebounceZeroIsImmediate(t *testing.T) {
	if got := waitAfter(t, newDebouncer(resource.Wait{})); got != 0 {
		t.Fatalf("zero wait took %v", got)
	}
}

func TestDebounceQuietForMin(t *testing.T) {
	d := newDebouncer(resource.Wait{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond})
	if got := waitAfter(t, d); got != 50*time.Millisecond {
		t.Fatalf("single change: fired after %v, want 50ms", got)
	}
	// each change snoozes by min
	if got := waitAfter(t, d, 30*time.Millisecond, 60*time.Millisecond); got != 110*time.Millisecond {
		t.Fatalf("changes at 30,60ms: fired after %v, want 110ms", got)
	}
}

func TestDebounceNeverPastMax(t *testing.T) {
	d := newDebouncer(resource.Wait{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond})
	var offs []time.Duration
	for i := 1; i <= 30; i++ {
		offs = append(offs, time.Duration(i)*10*time.Millisecond) // busy for 300ms
	}
	if got := waitAfter(t, d, offs[:19]...); got != 200*time.Millisecond {
		t.Fatalf("busy store: fired after %v, want the 200ms cap", got)
	}
}

func TestDebounceMaxBelowMin(t *testing.T) {
	d := newDebouncer(resource.Wait{Min: 100 * time.Millisecond, Max: 10 * time.Millisecond})
	if got := waitAfter(t, d); got != 100*time.Millisecond {
		t.Fatalf("fired after %v, want min 100ms", got)
	}
}

func TestDebounceStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		d := newDebouncer(resource.Wait{Min: time.Second, Max: time.Minute})
		if d.wait(ctx, make(chan struct{})) {
			t.Fatal("wait returned true after cancel")
		}
	})
}

func TestThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		more := make(chan struct{}, 1)
		every := 200 * time.Millisecond
		start := time.Now()
		if !throttle(ctx, time.Time{}, every, more) || time.Since(start) != 0 {
			t.Fatal("first sync was held")
		}
		if !throttle(ctx, start.Add(-time.Second), every, more) || time.Since(start) != 0 {
			t.Fatal("a sync after a quiet spell was held")
		}
		last := time.Now()
		time.Sleep(50 * time.Millisecond)
		more <- struct{}{} // absorbed while held
		if !throttle(ctx, last, every, more) {
			t.Fatal("throttle returned false")
		}
		if got := time.Since(last); got != every {
			t.Fatalf("held until %v after the last sync, want %v", got, every)
		}
		if len(more) != 0 {
			t.Fatal("change during the hold was not absorbed")
		}
		if !throttle(ctx, time.Now(), -1, more) {
			t.Fatal("a negative interval must not hold")
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if throttle(cctx, time.Now(), every, more) {
			t.Fatal("throttle returned true after cancel")
		}
	})
}
