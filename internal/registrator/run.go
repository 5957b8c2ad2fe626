package registrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// Run registers the containers of the Docker engine client reaches until ctx is done. It
// returns an error only at start (the store or the engine cannot be reached); after that it
// survives both going away: a lost engine is reconnected with backoff and followed by a full
// re-sync, a store that does not answer keeps every registration to be restored when it does.
// Nothing is deregistered when Run returns.
func Run(ctx context.Context, cfg Config, docker *client.Client, log *slog.Logger) error {
	reg, err := newRegistry(registryConfig{URI: cfg.URI, TTL: cfg.TTL, Hostname: cfg.Hostname, Timeout: cfg.Timeout, Value: cfg.KVValue})
	if err != nil {
		return err
	}
	defer reg.Close()
	log.Info("using adapter", "uri", cfg.URI.Redacted(), "hostname", cfg.Hostname)
	if cfg.HostIP != "" {
		log.Info("forcing host IP", "ip", cfg.HostIP)
	}
	if err := ping(ctx, cfg, reg, log); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	_, err = docker.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	b := newBridge(cfg, docker, reg, log)
	if cfg.URI.Scheme != "consul" && cfg.KVChecks { // Consul runs the checks itself
		cctx, cancel := context.WithCancel(ctx)
		b.checks = newCheckers(cctx)
		defer func() { cancel(); b.checks.wait() }()
	}
	return loop(ctx, b, docker, reg, log)
}

// ping waits for the store as registrator does: -retry-attempts more tries, -retry-interval
// apart (-1: forever).
func ping(ctx context.Context, cfg Config, reg Registry, log *slog.Logger) error {
	for attempt := 0; ; attempt++ {
		log.Info("connecting to backend", "attempt", attempt, "of", cfg.RetryAttempts)
		pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		err := reg.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if cfg.RetryAttempts != -1 && attempt >= cfg.RetryAttempts {
			return fmt.Errorf("backend %s: %w", cfg.URI.Scheme, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.RetryInterval):
		}
	}
}

func ticker(d time.Duration) (<-chan time.Time, func()) {
	if d <= 0 {
		return nil, func() {}
	}
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// loop is Run's one goroutine: Docker events, the timers, and reconnecting to the engine.
func loop(ctx context.Context, b *bridge, docker *client.Client, reg Registry, log *slog.Logger) error {
	resync, stopResync := ticker(b.cfg.Resync)
	defer stopResync()
	var refreshEvery time.Duration
	if b.cfg.TTL > 0 {
		refreshEvery = b.cfg.TTLRefresh
	}
	refresh, stopRefresh := ticker(refreshEvery)
	defer stopRefresh()
	heal, stopHeal := ticker(b.cfg.Heal)
	defer stopHeal()
	var checked <-chan health
	if b.checks != nil {
		checked = b.checks.out
	}
	var lost <-chan struct{}
	if l, ok := reg.(interface{ Lost() <-chan struct{} }); ok {
		lost = l.Lost()
	}

	var (
		msgs    <-chan events.Message
		errs    <-chan error
		stopEv  = func() {}
		retry   <-chan time.Time // reconnect timer while the engine is away
		backoff = 100 * time.Millisecond
		first   = true
	)
	defer func() { stopEv() }()
	connect := func() error {
		evCtx, cancel := context.WithCancel(ctx)
		// Listen before listing so that nothing between the two is missed.
		m, e := docker.Events(evCtx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", "container"))})
		if err := b.sync(ctx, !first, !first); err != nil {
			cancel()
			return err
		}
		msgs, errs, stopEv = m, e, cancel
		return nil
	}
	if err := connect(); err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	first = false
	log.Info("listening for Docker events")
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping; registrations stay in the store")
			return nil
		case m := <-msgs:
			switch m.Action {
			case events.ActionStart:
				b.add(ctx, m.Actor.ID, false)
			case events.ActionDie:
				b.remove(ctx, m.Actor.ID, false)
			}
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			stopEv()
			msgs, errs = nil, nil
			log.Warn("lost the Docker engine; registrations are kept, reconnecting", "err", err)
			backoff = 100 * time.Millisecond
			retry = time.After(backoff)
		case <-retry:
			pctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
			_, err := docker.Ping(pctx)
			cancel()
			if err == nil {
				err = connect()
			}
			if err != nil {
				if errors.Is(err, context.Canceled) && ctx.Err() != nil {
					return nil
				}
				log.Debug("Docker engine still away", "err", err)
				backoff = min(backoff*2, 2*time.Second)
				retry = time.After(backoff/2 + rand.N(backoff/2+1))
				continue
			}
			retry = nil
			log.Info("Docker engine back; re-synced")
		case <-resync:
			if msgs == nil {
				continue // re-synced on reconnect
			}
			if err := b.sync(ctx, true, false); err != nil {
				log.Warn("resync: listing containers failed, skipping", "err", err)
			}
		case <-refresh:
			b.refresh(ctx)
		case <-heal:
			b.heal(ctx)
		case h := <-checked:
			b.health(ctx, h)
		case <-lost:
			log.Warn("the store started a new session; registering again")
			b.heal(ctx)
		}
	}
}
