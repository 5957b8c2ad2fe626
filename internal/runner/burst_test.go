package runner

import (
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reconf/reconf/resource"
)

// A burst of 1,000 changes over one second with wait 50ms:500ms renders at most 3 times and
// ends with the final value.
func TestBurstCollapses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := res("burst", "/app")
		x.Wait = resource.Wait{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}
		b, rc, stop := startBurst(t, x)
		if rc.n("burst") != 1 {
			t.Fatalf("initial renders = %d, want 1", rc.n("burst"))
		}
		if _, per, _ := b.watchCalls(); per["/app"] != 1 {
			t.Fatalf("watch calls %v", per)
		}
		for i := range 1000 {
			b.set("/app/n", strconv.Itoa(i))
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second) // fake time: let the last window close
		synctest.Wait()
		renders := rc.n("burst") - 1
		if renders < 1 || renders > 3 {
			t.Fatalf("burst of 1000 changes rendered %d times, want 1..3", renders)
		}
		if got := rc.value("burst", "/app/n"); got != "999" {
			t.Fatalf("final value %q, want 999", got)
		}
		t.Logf("1000 changes → %d renders", renders)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// Without a wait, a burst of 1,000 changes over one second renders at most 3 times (at its
// start, once when the first period of BurstGrowth × DefaultMinInterval is over, and at its
// end), has the final value rendered BurstQuiet after its last change, and a change after a
// quiet spell renders at once.
func TestBurstWithoutWaitIsThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, rc, stop := startBurst(t, res("burst", "/app"))
		for i := range 1000 {
			b.set("/app/n", strconv.Itoa(i))
			time.Sleep(time.Millisecond)
		}
		time.Sleep(BurstQuiet - time.Millisecond) // fake time: BurstQuiet after the last change
		synctest.Wait()
		if got := rc.value("burst", "/app/n"); got != "999" {
			t.Fatalf("%v after the last change: value %q, want 999", BurstQuiet, got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		renders := rc.n("burst") - 1
		if renders < 1 || renders > 3 {
			t.Fatalf("burst of 1000 changes without wait rendered %d times, want 1..3", renders)
		}
		if got := rc.value("burst", "/app/n"); got != "999" {
			t.Fatalf("final value %q, want 999", got)
		}

		// After a quiet spell a single change renders at once (no throttle delay).
		before := rc.n("burst")
		b.set("/app/n", "lone")
		synctest.Wait()
		if rc.n("burst") != before+1 || rc.value("burst", "/app/n") != "lone" {
			t.Fatalf("a lone change after a quiet spell did not render at once")
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// A burst shorter than two DefaultMinIntervals, after a quiet spell, costs at most 3 renders:
// its first change at once, one when the interval has passed, and its last change once the
// store has been quiet for BurstQuiet (not when the next interval ends).
func TestShortBurstEndsPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, rc, stop := startBurst(t, res("burst", "/app"))
		time.Sleep(time.Second) // a quiet spell after the first render
		for _, n := range []int{1, 50, 300} {
			before := rc.n("burst")
			start := time.Now()
			for i := range n {
				b.set("/app/n", strconv.Itoa(i))
				time.Sleep(time.Millisecond)
			}
			last := time.Since(start) - time.Millisecond
			synctest.Wait()
			if n == 1 && rc.n("burst") != before+1 {
				t.Fatalf("a lone change after a quiet spell did not render at once")
			}
			time.Sleep(BurstQuiet - time.Millisecond)
			synctest.Wait()
			want := strconv.Itoa(n - 1)
			if got := rc.value("burst", "/app/n"); got != want {
				t.Fatalf("burst of %d: %v after the last change the value is %q, want %q", n, BurstQuiet, got, want)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			if renders := rc.n("burst") - before; renders < 1 || renders > 3 {
				t.Fatalf("burst of %d changes over %v: %d renders, want 1..3", n, last, renders)
			}
			t.Logf("burst of %d changes over %v: %d renders", n, last, rc.n("burst")-before)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// startBurst runs a watching runner over x with /app/n = "start" in the store, in the
// synctest bubble, and waits for its start; stop cancels it and returns Run's error.
func startBurst(t *testing.T, x *resource.Resource) (*memBackend, *recorder, func() error) {
	t.Helper()
	b := newMem()
	b.kv["/app/n"] = "start"
	rc := newRecorder()
	stop := start(t, testRunner(t, Config{Resources: []*resource.Resource{x}, Backend: b, Watch: true}, rc))
	synctest.Wait()
	return b, rc, stop
}
