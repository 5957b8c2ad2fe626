package backends

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"time"
)

func sortStrings(s []string) { sort.Strings(s) }

// Poll is the one shared helper for backends that cannot watch: it re-reads prefixes every
// interval and signals changed when the snapshot differs from the last one (and once after a
// failed read succeeds again). It says in the log that it polls. It returns ctx.Err() when ctx
// is done, and an error wrapping ErrConfig at once if interval is not positive.
func Poll(ctx context.Context, b Backend, prefixes []string, interval time.Duration, changed chan<- struct{}, log *slog.Logger) error {
	if interval <= 0 {
		return fmt.Errorf("poll interval %v: %w", interval, ErrConfig)
	}
	if log == nil {
		log = slog.Default()
	}
	log.Info("backend cannot watch; polling", "prefixes", prefixes, "interval", interval)
	var last map[string]string
	failed := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cur, err := b.Get(ctx, prefixes)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if !failed {
				log.Warn("poll failed", "err", err)
			}
			failed = true
		default:
			if (last != nil && !maps.Equal(last, cur)) || failed {
				Notify(changed)
			}
			last, failed = cur, false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Notify sends on a one-slot signal channel without blocking: if a signal is already pending
// the new one merges into it.
func Notify(changed chan<- struct{}) {
	select {
	case changed <- struct{}{}:
	default:
	}
}

// Backoff returns the wait before retry attempt n (0-based): exponential from base, capped at
// max, with up to 20% jitter subtracted so that many clients do not retry in step.
func Backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < max; i++ {
		if d > max/2 {
			d = max // doubling would pass max (or overflow)
			break
		}
		d *= 2
	}
	if d > max {
		d = max
	}
	j := time.Duration(rand64() % uint64(d/5+1))
	return d - j
}
