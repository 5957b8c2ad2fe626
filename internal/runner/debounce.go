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
// the window closes, then returns true; it returns false if ctx ends first.
func (d debouncer) wait(ctx context.Context, more <-chan struct{}) bool {
	if d.min <= 0 {
		return ctx.Err() == nil
	}
	first := time.Now()
	limit := first.Add(d.max)
	t := time.NewTimer(d.min)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-more:
			next := time.Now().Add(d.min)
			if next.After(limit) {
				next = limit
			}
			t.Reset(time.Until(next))
		}
	}
}

// throttle holds a change-triggered sync until at least every has passed since the last sync
// started, absorbing further changes from more meanwhile (they are covered by the sync that
// follows). A change after a quiet spell passes at once. It returns false if ctx ends first.
func throttle(ctx context.Context, last time.Time, every time.Duration, more <-chan struct{}) bool {
	wait := every - time.Since(last)
	if every <= 0 || last.IsZero() || wait <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-more:
		}
	}
}
