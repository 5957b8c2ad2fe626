package register

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// store is one backend's way of publishing an instance.
type store interface {
	// Register makes the instance visible (creating or replacing it) with its TTL.
	Register(ctx context.Context) error
	// Refresh keeps a registered instance alive. An error wrapping errGone (the lease, session,
	// key or check was lost) makes the loop register again; any other error (the store did not
	// answer) is retried next round while the TTL still runs.
	Refresh(ctx context.Context) error
	// Down hides the instance after its check failed: the key is removed (Consul: the TTL
	// check is failed).
	Down(ctx context.Context) error
	// Deregister removes the instance for good.
	Deregister(ctx context.Context) error
	// Close releases the client without touching the instance.
	Close() error
}

// loopConfig drives keepAlive.
type loopConfig struct {
	Interval time.Duration // between checks
	Timeout  time.Duration // bound on one check
	Failures int           // consecutive failures that take the instance down
	Log      *slog.Logger
}

// state is what keepAlive knows between ticks; step is its whole decision, kept apart from
// timing so that tests drive it directly.
type state struct {
	registered bool
	failures   int
}

// step runs one round: the check, then Register, Refresh or Down as the outcome asks.
func (s *state) step(ctx context.Context, st store, check Check, cfg loopConfig) {
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	err := check(cctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		if s.failures > 0 {
			cfg.Log.Info("check passes again", "after_failures", s.failures)
		}
		s.failures = 0
	} else {
		s.failures++
		if s.failures <= cfg.Failures {
			cfg.Log.Warn("check failed", "failures", s.failures, "of", cfg.Failures, "err", err)
		} else { // already down: say it once, not every interval
			cfg.Log.Debug("check still failing", "failures", s.failures, "err", err)
		}
	}
	switch {
	case s.registered && s.failures >= cfg.Failures:
		if err := st.Down(ctx); err != nil {
			cfg.Log.Warn("taking the instance down failed; it will expire with its TTL", "err", err)
		} else {
			cfg.Log.Info("instance taken down after failed checks", "failures", s.failures)
		}
		s.registered = false
	case s.registered:
		err := st.Refresh(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, errGone):
			cfg.Log.Warn("instance lost its registration; registering again", "err", err)
			s.registered = false
			s.register(ctx, st, cfg)
		default: // the store did not answer: the TTL still runs, try again next round
			cfg.Log.Warn("keep-alive failed; retrying", "err", err)
		}
	case s.failures == 0:
		s.register(ctx, st, cfg)
	}
}

func (s *state) register(ctx context.Context, st store, cfg loopConfig) {
	if err := st.Register(ctx); err != nil {
		if ctx.Err() == nil {
			cfg.Log.Warn("registration failed; retrying", "err", err)
		}
		return
	}
	s.registered = true
	cfg.Log.Info("instance registered")
}

// keepAlive checks every Interval and keeps st in step with the check until ctx is done, then
// deregisters (bounded by deregTimeout) and returns.
func keepAlive(ctx context.Context, st store, check Check, cfg loopConfig, deregTimeout time.Duration) error {
	var s state
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		s.step(ctx, st, check, cfg)
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), deregTimeout)
			defer cancel()
			if err := st.Deregister(dctx); err != nil {
				cfg.Log.Warn("deregistration failed; the instance will expire with its TTL", "err", err)
				return err
			}
			cfg.Log.Info("instance deregistered")
			return nil
		case <-t.C:
		}
	}
}
