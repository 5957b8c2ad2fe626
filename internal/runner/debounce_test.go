package runner

import (
	"context"
	"slices"
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
		last, ok := d.wait(context.Background(), more)
		if !ok {
			t.Fatal("wait returned false")
		}
		took = time.Since(start)
		if want := start.Add(offsets0(offsets, took)); !last.Equal(want) {
			t.Errorf("last change at %v, want %v", last.Sub(start), want.Sub(start))
		}
		synctest.Wait()
	})
	return took
}

// offsets0 is the offset of the last signal absorbed by a wait that took took (0: none).
func offsets0(offsets []time.Duration, took time.Duration) time.Duration {
	var last time.Duration
	for _, o := range offsets {
		if o < took {
			last = o
		}
	}
	return last
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
		if _, ok := d.wait(ctx, make(chan struct{})); ok {
			t.Fatal("wait returned true after cancel")
		}
	})
}

// holdAfter runs th.hold with the previous sync started prev before the call, the pending
// change seen at the call, and further changes at the given offsets; it returns how long the
// hold took and whether it let the sync through early. th.gap is the gap an earlier hold saw.
func holdAfter(t *testing.T, th throttle, prev time.Duration, offsets ...time.Duration) (took time.Duration, early bool) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		more := make(chan struct{}, 1)
		start := time.Now()
		if prev >= 0 {
			th.last = start.Add(-prev)
		}

		stop := make(chan struct{})
		go func() {
			for _, o := range offsets {
				select {
				case <-stop:
					return
				case <-time.After(o - time.Since(start)):
				}
				select { // as a watch signals: without blocking
				case more <- struct{}{}:
				default:
				}
			}
		}()
		if !th.hold(context.Background(), start, more) {
			t.Fatal("hold returned false")
		}
		close(stop)
		took, early = time.Since(start), th.wasEarly
		synctest.Wait()
	})
	return took, early
}

// every1ms returns offsets 1ms apart up to d.
func every1ms(d time.Duration) []time.Duration {
	var o []time.Duration
	for x := time.Millisecond; x <= d; x += time.Millisecond {
		o = append(o, x)
	}
	return o
}

func TestThrottle(t *testing.T) {
	const every, quiet = 200 * time.Millisecond, 25 * time.Millisecond
	th := throttle{every: every, quiet: quiet}
	for _, tc := range []struct {
		what      string
		prev      time.Duration // since the previous sync started; -1: none yet
		gap       time.Duration // between the last two changes an earlier hold saw; 0: none
		offsets   []time.Duration
		want      time.Duration
		wantEarly bool
	}{
		{"first sync", -1, 0, nil, 0, false},
		{"after a quiet spell", time.Second, 0, nil, 0, false},
		{"exactly every after the last", every, 0, nil, 0, false},
		{"a lone change soon after a sync: quiet", 50 * time.Millisecond, 0, nil, quiet, true},
		{"a burst ending: quiet after its last change", 10 * time.Millisecond, 0, every1ms(100 * time.Millisecond), 125 * time.Millisecond, true},
		{"a continuous burst: the first period, BurstGrowth × every after the last sync", 10 * time.Millisecond, 0, every1ms(time.Second),
			BurstGrowth*every - 10*time.Millisecond, false},
		{"a change just before every has passed: quiet after it", 180 * time.Millisecond, 0, []time.Duration{10 * time.Millisecond}, 35 * time.Millisecond, true},
		{"changes 50ms apart (Consul's query gap): a gap and a quarter after the last", 10 * time.Millisecond, 50 * time.Millisecond,
			[]time.Duration{50 * time.Millisecond, 100 * time.Millisecond}, 162500 * time.Microsecond, true},
		{"the earlier gap until this hold sees one", 10 * time.Millisecond, 50 * time.Millisecond, nil, 62500 * time.Microsecond, true},
		{"a gap seen replaces the earlier one", 10 * time.Millisecond, 50 * time.Millisecond, every1ms(20 * time.Millisecond), 45 * time.Millisecond, true},
		{"a new burst forgets the earlier gap", time.Second, 50 * time.Millisecond, nil, 0, false},
	} {
		th := th
		th.gap = tc.gap
		got, early := holdAfter(t, th, tc.prev, tc.offsets...)
		if got != tc.want || early != tc.wantEarly {
			t.Errorf("%s: held %v (early %v), want %v (early %v)", tc.what, got, early, tc.want, tc.wantEarly)
		}
	}
	// No quiet: holding out the whole period.
	if got, _ := holdAfter(t, throttle{every: every}, 50*time.Millisecond); got != BurstGrowth*every-50*time.Millisecond {
		t.Errorf("without quiet: held %v, want %v", got, BurstGrowth*every-50*time.Millisecond)
	}
	// Later held syncs of a burst wait out a longer period, up to BurstMaxPeriod × every.
	for held, want := range []time.Duration{BurstGrowth * every, BurstGrowth * BurstGrowth * every, BurstMaxPeriod * every, BurstMaxPeriod * every} {
		if got, _ := holdAfter(t, throttle{every: every, quiet: quiet, held: held}, 10*time.Millisecond, every1ms(time.Minute)...); got != want-10*time.Millisecond {
			t.Errorf("continuous burst after %d held syncs: held %v, want %v", held, got, want-10*time.Millisecond)
		}
	}
	if got, _ := holdAfter(t, throttle{every: -1, quiet: quiet}, 0); got != 0 {
		t.Errorf("a negative interval held %v", got)
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		th := throttle{every: every, quiet: quiet, last: time.Now()}
		if th.hold(ctx, time.Now(), make(chan struct{})) {
			t.Fatal("hold returned true after cancel")
		}
	})
}

// TestThrottleEarlySyncsSpaced: syncs let through early by the quiet are every apart unless
// the store was quiet half as long again, so a trickle of changes a little slower than quiet
// syncs at most twice per every; the changes meanwhile are absorbed, and the last one still
// syncs.
func TestThrottleEarlySyncsSpaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const every, quiet, gap = 200 * time.Millisecond, 25 * time.Millisecond, 30 * time.Millisecond
		th := throttle{every: every, quiet: quiet}
		more := make(chan struct{}, 1)
		start := time.Now()
		const changes = 100 // 3s of a change every 30ms
		go func() {
			for i := 1; i <= changes; i++ {
				time.Sleep(time.Until(start.Add(time.Duration(i) * gap)))
				select {
				case more <- struct{}{}:
				default:
				}
			}
		}()
		var syncs []time.Duration
		th.started(start) // the first change synced at once
		for {
			select {
			case <-more:
			case <-time.After(time.Second):
				// quiet for good
				if last := start.Add(changes * gap); th.last.Before(last) {
					t.Fatalf("the last change (at %v) was not synced; last sync at %v", last.Sub(start), th.last.Sub(start))
				}
				if n, most := len(syncs), 2*int(changes*gap/every)+2; n > most {
					t.Fatalf("%d syncs over %v of changes %v apart, want at most %d: %v", n, changes*gap, gap, most, syncs)
				}
				t.Logf("%d changes %v apart: %d syncs %v", changes, gap, len(syncs), syncs)
				return
			}
			changed := time.Now()
			if !th.hold(context.Background(), changed, more) {
				t.Fatal("hold returned false")
			}
			now := time.Now()
			syncs = append(syncs, now.Sub(start))
			if th.wasEarly && !th.early.IsZero() && now.Sub(th.early) < every {
				t.Fatalf("early syncs %v apart", now.Sub(th.early))
			}
			th.started(now)
		}
	})
}

func TestThrottlePeriod(t *testing.T) {
	const every = 200 * time.Millisecond
	for held, want := range []time.Duration{800 * time.Millisecond, 3200 * time.Millisecond, 3200 * time.Millisecond, 3200 * time.Millisecond} {
		th := throttle{every: every, held: held}
		if got := th.period(); got != want {
			t.Errorf("period after %d held syncs = %v, want %v", held, got, want)
		}
	}
	if got := (&throttle{every: time.Hour, held: 1000}).period(); got != BurstMaxPeriod*time.Hour {
		t.Errorf("period of a long interval = %v, want %v", got, BurstMaxPeriod*time.Hour)
	}
}

// simulate runs the worker's loop (hold, then a sync that takes no time) over changes made at
// the given offsets from the start, the previous sync having started prev before it (-1:
// none), and returns when each sync started and the throttle at the end. The first change is
// pending at the start.
func simulate(t *testing.T, th throttle, prev time.Duration, offsets []time.Duration) (syncs []time.Duration, end throttle) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if prev >= 0 {
			th.last = start.Add(-prev)
		}
		more := make(chan struct{}, 1)
		more <- struct{}{}
		go func() {
			for _, o := range offsets {
				time.Sleep(time.Until(start.Add(o)))
				select {
				case more <- struct{}{}:
				default:
				}
			}
		}()
		for {
			select {
			case <-more:
			case <-time.After(time.Minute):
				end = th
				return // quiet for good
			}
			if !th.hold(context.Background(), time.Now(), more) {
				t.Fatal("hold returned false")
			}
			syncs = append(syncs, time.Since(start))
			th.started(time.Now())
		}
	})
	return syncs, end
}

// A burst with no pause in it, after a quiet spell, syncs at its first change, at most once
// while it lasts (if it lasts longer than the first period) and BurstQuiet after its last
// change, up to 4s long; a stream that goes on syncs once per BurstMaxPeriod × every.
func TestThrottleBurstCosts(t *testing.T) {
	const every = DefaultMinInterval
	th := throttle{every: every, quiet: BurstQuiet}
	for _, tc := range []struct {
		d    time.Duration
		want []time.Duration
	}{
		{150 * time.Millisecond, []time.Duration{0, 175 * time.Millisecond}},
		{700 * time.Millisecond, []time.Duration{0, 725 * time.Millisecond}},
		{2300 * time.Millisecond, []time.Duration{0, 800 * time.Millisecond, 2325 * time.Millisecond}},
		{3900 * time.Millisecond, []time.Duration{0, 800 * time.Millisecond, 3925 * time.Millisecond}},
		{10 * time.Second, []time.Duration{0, 800 * time.Millisecond, 4 * time.Second, 7200 * time.Millisecond, 10025 * time.Millisecond}},
	} {
		syncs, end := simulate(t, th, time.Second, every1ms(tc.d))
		if !slices.Equal(syncs, tc.want) {
			t.Errorf("burst of %v: syncs at %v, want %v", tc.d, syncs, tc.want)
		}
		if end.held != len(tc.want)-1 {
			t.Errorf("burst of %v: %d held syncs counted, want %d", tc.d, end.held, len(tc.want)-1)
		}
	}
	// The same burst right after a sync: its first change is held too, until the quiet after
	// its last change when that comes first.
	if syncs, _ := simulate(t, th, 10*time.Millisecond, every1ms(700*time.Millisecond)); !slices.Equal(syncs, []time.Duration{725 * time.Millisecond}) {
		t.Errorf("burst of 700ms right after a sync: syncs at %v, want [725ms]", syncs)
	}
}

// After a burst and a quiet spell, a lone change syncs at once and starts a new burst: the
// period is the first one again.
func TestThrottleResetsAfterQuiet(t *testing.T) {
	const every = DefaultMinInterval
	offsets := every1ms(5 * time.Second)
	lone := 5*time.Second + every + BurstQuiet + time.Millisecond // every after the end's sync
	offsets = append(offsets, lone)
	offsets = append(offsets, lone+10*time.Millisecond) // and a second burst, of two changes
	syncs, end := simulate(t, throttle{every: every, quiet: BurstQuiet}, time.Second, offsets)
	want := []time.Duration{0, 800 * time.Millisecond, 4 * time.Second, 5025 * time.Millisecond, lone, lone + 10*time.Millisecond + BurstQuiet}
	if !slices.Equal(syncs, want) {
		t.Fatalf("syncs at %v, want %v", syncs, want)
	}
	if end.held != 1 {
		t.Errorf("held syncs after the second burst = %d, want 1", end.held)
	}
}

// A burst that paused for more than the quiet (a premature early sync) and then ended soon
// after: its end syncs once the store has been quiet half as long again, not every after the
// early sync.
func TestThrottleEndAfterPause(t *testing.T) {
	offsets := every1ms(300 * time.Millisecond)
	for o := 331 * time.Millisecond; o <= 430*time.Millisecond; o += time.Millisecond {
		offsets = append(offsets, o) // after a 31ms pause
	}
	syncs, _ := simulate(t, throttle{every: DefaultMinInterval, quiet: BurstQuiet}, time.Second, offsets)
	want := []time.Duration{0, 300*time.Millisecond + BurstQuiet, 430*time.Millisecond + BurstQuiet*3/2}
	if !slices.Equal(syncs, want) {
		t.Errorf("syncs at %v, want %v", syncs, want)
	}
}
