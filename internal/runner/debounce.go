package runner

import (
	"context"
	"time"

	"github.com/reconf/reconf/resource"
)

// debouncer waits for quiet after a change, with consul-template's semantics: each change
// snoozes the deadline to now+Min, never past first change + Max. A zero Min means at once.
type debouncer struct {
	min, max time.Duration
}

func newDebouncer(w resource.Wait) debouncer {
	d := debouncer{min: w.Min, max: w.Max}
	if d.max < d.min {
		d.max = d.min
	}
	return d
}

// wait is called after a first change was seen. It absorbs further changes from more until
// the window closes, then returns true and when the last change came; it returns false if
// ctx ends first.
func (d debouncer) wait(ctx context.Context, more <-chan struct{}) (time.Time, bool) {
	first := time.Now()
	if d.min <= 0 {
		return first, ctx.Err() == nil
	}
	latest := first
	limit := first.Add(d.max)
	t := time.NewTimer(d.min)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return latest, false
		case <-t.C:
			return latest, true
		case <-more:
			latest = time.Now()
			next := latest.Add(d.min)
			if next.After(limit) {
				next = limit
			}
			t.Reset(time.Until(next))
		}
	}
}

// BurstQuiet is how long no change must have come for the throttle to let a held sync
// through before its period is over: the last change of a burst reaches the file about this
// long after it was made, not up to a whole period later.
const BurstQuiet = 25 * time.Millisecond

// While a burst lasts, the period a held sync waits out grows: the first held sync of a burst
// waits up to BurstGrowth × MinInterval, each later one BurstGrowth times longer than the one
// before, up to BurstMaxPeriod × MinInterval (with the 200ms default: 0.8s, then 3.2s).
const (
	BurstGrowth    = 4
	BurstMaxPeriod = 16
)

// throttle spaces the change-triggered syncs of one resource, so that a burst of changes
// costs a few syncs, not one per change, while its final state still reaches the file soon
// after the burst ends:
//
//   - a change after a quiet spell (no sync started for every) syncs at once and starts a
//     burst;
//   - any other change is held until the burst's current period has passed since the last
//     sync started, or until no change came for quiet (the burst is over), whichever is
//     first; changes meanwhile are absorbed, covered by the sync that follows;
//   - the period grows with each held sync of the burst: BurstGrowth × every for the first,
//     BurstGrowth times more for each next one, at most BurstMaxPeriod × every. A burst of up
//     to (BurstGrowth + BurstMaxPeriod) × every (4s by default) with no pause of quiet in it
//     therefore costs a sync at its start, at most one while it lasts and one at its end, and
//     a stream that never pauses one sync per BurstMaxPeriod × every;
//   - the quiet is longer when changes come further apart: a quarter more than the latest gap
//     between two changes seen while holding (when shorter than every). A store whose watch
//     signals a burst at a steady pace (Consul's blocking queries start MinQueryGap apart) is
//     busy, not quiet, between two signals;
//   - within every of a sync let through early by the quiet, the next early one needs a quiet
//     half as long again (37.5ms), so that a trickle of changes a little slower than the quiet
//     (or a burst with many short pauses) syncs at most once per every, not once per change,
//     while the end of a burst that paused just before it still reaches the file within that
//     longer quiet, not up to every later. An early sync counts as one of the burst's held
//     syncs: the burst, and its growing period, end only with a quiet spell.
type throttle struct {
	every, quiet time.Duration
	last         time.Time     // when the last sync started
	early        time.Time     // when the last sync let through by the quiet started
	wasEarly     bool          // the sync hold let through last was early
	held         int           // syncs held since the burst's first
	prev         time.Time     // the latest change seen by the hold in progress
	gap          time.Duration // between the two latest changes one hold saw, if less than every
}

// saw records a change at now, seen by the hold in progress. Only changes that one hold saw
// are compared: between two holds a sync ran, and the changes during it were not seen.
func (t *throttle) saw(now time.Time) {
	if g := now.Sub(t.prev); g < t.every {
		t.gap = g
	} else {
		t.gap = 0
	}
	t.prev = now
}

// period is how long after the last sync started the next held sync may start at the latest.
func (t *throttle) period() time.Duration {
	p := t.every * BurstGrowth
	for range t.held {
		if p >= t.every*BurstMaxPeriod {
			break
		}
		p *= BurstGrowth
	}
	return min(p, t.every*BurstMaxPeriod)
}

// hold is called with a change pending, the latest seen at changed. It returns true when the
// sync may start, false if ctx ends first.
func (t *throttle) hold(ctx context.Context, changed time.Time, more <-chan struct{}) bool {
	t.wasEarly = false
	t.prev = changed // the gap the last hold saw stays the estimate until this one sees one
	since := time.Since(t.last)
	if t.every <= 0 || t.last.IsZero() || since >= t.every {
		t.gap, t.held = 0, 0 // a new burst, if one
		return ctx.Err() == nil
	}
	deadline := time.NewTimer(t.period() - since)
	defer deadline.Stop()
	var (
		q     *time.Timer
		quiet <-chan time.Time // nil: no early sync
	)
	if t.quiet > 0 {
		q = time.NewTimer(t.quietUntil(changed))
		defer q.Stop()
		quiet = q.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			t.held++
			return true
		case <-quiet:
			t.held++
			t.wasEarly = true
			return true
		case <-more:
			now := time.Now()
			t.saw(now)
			if q != nil {
				q.Reset(t.quietUntil(now))
			}
		}
	}
}

// quietUntil is how long from now an early sync may start, the latest change having come at
// changed.
func (t *throttle) quietUntil(changed time.Time) time.Duration {
	q := max(t.quiet, t.gap+t.gap/4)
	at := changed.Add(q)
	if !t.early.IsZero() {
		// Within every of the last early sync, only a quiet half as long again lets one through.
		if next := t.early.Add(t.every); next.After(at) {
			at = changed.Add(q + q/2)
			if next.Before(at) {
				at = next
			}
		}
	}
	return time.Until(at)
}

// started records that a sync started at now (whatever triggered it).
func (t *throttle) started(now time.Time) {
	t.last = now
	if t.wasEarly {
		t.early = now
		t.wasEarly = false
	}
}
