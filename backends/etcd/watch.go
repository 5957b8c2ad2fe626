package etcd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"

	"github.com/reconf/reconf/backends"
)

// event is one watch response of watch i; closed says the watch channel closed.
type event struct {
	i      int
	resp   clientv3.WatchResponse
	closed bool
}

// Watch signals changed when a key at or under one of prefixes changes. Each prefix has its own
// etcd watch, started after the revision of the latest Get that read it (so nothing between
// that Get and the watch is missed) and resumed from the last revision seen after a
// disconnect. A compaction past that revision signals (the caller relists) and the watch goes on
// from the compaction point. A silent stream is probed with a progress request and rebuilt if
// it stays silent. It signals once after every reconnect and returns ctx.Err() when ctx is done.
func (c *Client) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	ps := backends.Dedupe(prefixes)
	revs := make([]int64, len(ps)) // last revision seen (or read) per prefix
	for i, p := range ps {
		revs[i] = c.startRev(p)
	}
	log := c.cfg.Logger.With("backend", "etcd", "nodes", c.nodes)
	conn := make(chan connectivity.State, 1)
	stop := make(chan struct{})
	var connWG sync.WaitGroup
	connWG.Add(1)
	go func() { defer connWG.Done(); c.followConn(ctx, conn, stop) }()
	defer func() { close(stop); connWG.Wait() }()

	lost := false // a reconnect is under way: signal when the watches answer again
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			lost = true
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backends.Backoff(attempt-1, c.cfg.BackoffBase, c.cfg.BackoffMax)):
			}
		}
		if c.cli.Ctx().Err() != nil {
			return fmt.Errorf("etcd %s: watch: %w", c.nodes, net.ErrClosed)
		}
		ok, err := c.session(ctx, ps, revs, changed, conn, &lost, log)
		if err != nil {
			return err
		}
		if ok {
			attempt = 0
		}
	}
}

// session runs one set of watches until ctx is done (error ctx.Err()) or they must be rebuilt
// (nil error); ok reports whether the watches were established in between.
func (c *Client) session(ctx context.Context, ps []string, revs []int64, changed chan<- struct{},
	conn <-chan connectivity.State, lost *bool, log *slog.Logger) (ok bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	events := make(chan event)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, p := range ps {
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify(), clientv3.WithProgressNotify()}
		if revs[i] > 0 {
			opts = append(opts, clientv3.WithRev(revs[i]+1))
		}
		wch := c.cli.Watch(wctx, p, opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range wch {
				select {
				case events <- event{i: i, resp: r}:
				case <-wctx.Done():
					return
				}
			}
			select {
			case events <- event{i: i, closed: true}:
			case <-wctx.Done():
			}
		}()
	}
	created := 0
	seen, probed := time.Now(), false
	tick := time.NewTicker(c.cfg.ProgressInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ok, ctx.Err()
		case st := <-conn:
			if st != connectivity.Ready {
				*lost = true
			} else if *lost && created == len(ps) {
				*lost = false
				backends.Notify(changed)
			}
		case <-tick.C:
			switch {
			case time.Since(seen) < c.cfg.ProgressInterval:
			case !probed:
				probed = true
				pctx, pcancel := context.WithTimeout(wctx, c.cfg.RequestTimeout)
				if err := c.cli.RequestProgress(pctx); err != nil && ctx.Err() == nil {
					log.Warn("etcd watch: progress request failed", "err", err)
				}
				pcancel()
			default:
				log.Warn("etcd watch: stream silent after a progress request; rebuilding it", "prefixes", ps)
				return ok, nil
			}
		case e := <-events:
			seen, probed = time.Now(), false
			if e.closed {
				if ctx.Err() != nil {
					return ok, ctx.Err()
				}
				log.Warn("etcd watch: channel closed; rewatching", "prefix", ps[e.i])
				return ok, nil
			}
			r := e.resp
			if r.CompactRevision != 0 {
				// Events after revs[i] are gone: relist, then follow from the compaction point.
				log.Info("etcd watch: revision compacted; relisting", "prefix", ps[e.i], "compact_revision", r.CompactRevision)
				revs[e.i] = r.CompactRevision - 1
				backends.Notify(changed)
				return ok, nil
			}
			if err := r.Err(); err != nil {
				log.Warn("etcd watch: canceled; rewatching", "prefix", ps[e.i], "err", err)
				return ok, nil
			}
			if r.Created {
				if created++; created == len(ps) {
					ok = true
					if *lost {
						*lost = false
						backends.Notify(changed)
					}
				}
			}
			if r.IsProgressNotify() {
				revs[e.i] = max(revs[e.i], r.Header.Revision)
			}
			for _, ev := range r.Events {
				revs[e.i] = max(revs[e.i], ev.Kv.ModRevision)
				if backends.UnderPrefix(string(ev.Kv.Key), ps[e.i]) {
					backends.Notify(changed)
				}
			}
		}
	}
}

// followConn reports the connection's state changes on out until stop is closed.
func (c *Client) followConn(ctx context.Context, out chan<- connectivity.State, stop <-chan struct{}) {
	cc := c.cli.ActiveConnection()
	if cc == nil {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-wctx.Done():
		}
		cancel()
	}()
	st := cc.GetState()
	for cc.WaitForStateChange(wctx, st) {
		st = cc.GetState()
		select {
		case out <- st:
		case <-wctx.Done():
			return
		}
	}
}
