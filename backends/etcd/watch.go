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
// that Get and the watch is missed); the etcd client resumes it from the last revision seen
// after a disconnect. A compaction past that revision signals (the caller relists) and the
// watch goes on from the latest revision. A silent stream is probed with a progress request
// and rebuilt, from the latest revision, if it stays silent: on a new gRPC stream, away from
// members that do not answer a status probe (see steerAway). The watches of every Watch call
// share the stream and its probing (see stream.go). It signals once after every
// reconnect or rebuild and returns ctx.Err() when ctx is done.
//
// While it runs, Watch keeps a mirror of every key under each prefix, read at the revision the
// watch starts after and updated from the watch's events before they signal, and Get and
// GetSorted answer from the mirrors when these cover every prefix asked for and the watch is
// healthy; otherwise they read the server. A lost connection stops the mirrors serving as soon
// as the client notices it, and they are read again before the reconnect signal; a rebuilt
// watch reads them again; they are dropped when Watch returns. A Get spanning several mirrors
// has each prefix's keys as of that mirror's latest event, as each watch's later signal will
// tell.
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
// (nil error); ok reports whether the watches were established in between. Each prefix is
// first read into a mirror, at revs[i] in the first session (the revision of the Get the
// watch must follow) and at the latest revision after a loss (the reconnect signal covers the
// gap), then watched from the revision read; its events update the mirror before they signal.
func (c *Client) session(ctx context.Context, ps []string, revs []int64, changed chan<- struct{},
	conn <-chan connectivity.State, lost *bool, log *slog.Logger) (ok bool, err error) {
	st, sctx := c.joinStream(ctx, log)
	defer c.leaveStream(st)
	wctx, cancel := context.WithCancel(sctx)
	events := make(chan event)
	var wg sync.WaitGroup
	mirrors := make([]*mirror, 0, len(ps))
	defer func() {
		for _, m := range mirrors { // stop serving before anything else
			c.dropMirror(m)
		}
		cancel()
		wg.Wait()
	}()
	for i, p := range ps {
		from := revs[i]
		if *lost {
			// A rebuild: read the latest revision, so that the first Get after the reconnect
			// signal shows what was written meanwhile (no need for those events).
			from = 0
		}
		m, relisted, err := c.seed(ctx, p, from)
		if err != nil {
			if ctx.Err() != nil {
				return ok, ctx.Err()
			}
			log.Warn("etcd watch: reading the watched prefix failed; retrying", "prefix", p, "err", err)
			return ok, nil
		}
		if relisted {
			// Events after revs[i] are gone: the mirror holds the latest revision instead.
			log.Info("etcd watch: revision compacted; relisted", "prefix", p, "revision", revs[i])
			backends.Notify(changed)
		}
		revs[i] = m.rev
		m.hold = &st.asking
		mirrors = append(mirrors, m)
		c.addMirror(m)
	}
	if afterSeed != nil {
		afterSeed()
	}
	for i, p := range ps {
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify(),
			clientv3.WithProgressNotify(), clientv3.WithRev(revs[i] + 1)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The etcd client's Watch returns once its gRPC stream is open, which waits for
			// as long as the server is gone (it went since the seed read): the loop below
			// goes on meanwhile and finds the silence like any other.
			wch := c.cli.Watch(wctx, p, opts...)
			for r := range wch {
				st.heard()
				if r.IsProgressNotify() {
					// It says the stream is alive, which heard noted; the revision it
					// carries is of no use (a rebuilt session reads the latest).
					continue
				}
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
	created := make([]bool, len(ps))
	ncreated := 0
	stale := false // the connection was lost since the mirrors were read: read them again
	// serve lets each mirror answer reads while its watch is known to be healthy (and, see
	// mirror.hold, while no progress request of the stream is unanswered).
	serve := func() {
		for i, m := range mirrors {
			m.setServing(created[i] && !*lost && !stale)
		}
	}
	// recovered re-reads the mirrors after a lost connection, so that the first Get after the
	// reconnect signal shows what was written meanwhile (the resumed watch delivers those
	// events later, and the mirror skips them).
	recovered := func() error {
		if stale {
			for i, p := range ps {
				keys, values, rev, err := c.readSorted(ctx, p, 0)
				if err != nil {
					return classify(c.nodes, "watch: read "+p, err)
				}
				mirrors[i].reset(keys, values, rev)
				revs[i] = max(revs[i], rev)
			}
			stale = false
			log.Debug("etcd watch: reconnected; mirrors read again", "prefixes", ps)
		}
		*lost = false
		serve()
		backends.Notify(changed)
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ok, ctx.Err()
		case cs := <-conn:
			if cs != connectivity.Ready {
				*lost, stale = true, true
				serve()
			} else if *lost && ncreated == len(ps) {
				if err := recovered(); err != nil {
					if ctx.Err() != nil {
						return ok, ctx.Err()
					}
					log.Warn("etcd watch: reading the watched prefixes after a reconnect failed; rewatching", "err", err)
					return ok, nil
				}
			}
		case <-st.stalled:
			// The stream's monitor found it silent after a progress request and steered
			// away from members that do not answer (see stream.go).
			return ok, nil
		case e := <-events:
			if e.closed {
				if ctx.Err() != nil {
					return ok, ctx.Err()
				}
				log.Warn("etcd watch: channel closed; rewatching", "prefix", ps[e.i])
				return ok, nil
			}
			r := e.resp
			if r.CompactRevision != 0 {
				// Events after revs[i] are gone: signal at once (the caller relists from the
				// server, the mirrors no longer serving); the next session reads the mirrors
				// again from the latest revision and signals when it is in place.
				log.Info("etcd watch: revision compacted; relisting", "prefix", ps[e.i], "compact_revision", r.CompactRevision)
				for _, m := range mirrors {
					m.setServing(false)
				}
				backends.Notify(changed)
				return ok, nil
			}
			if err := r.Err(); err != nil {
				log.Warn("etcd watch: canceled; rewatching", "prefix", ps[e.i], "err", err)
				return ok, nil
			}
			if r.Created && !created[e.i] {
				created[e.i] = true
				if ncreated++; ncreated == len(ps) {
					ok = true
					if *lost {
						if err := recovered(); err != nil {
							if ctx.Err() != nil {
								return ok, ctx.Err()
							}
							log.Warn("etcd watch: reading the watched prefixes after a reconnect failed; rewatching", "err", err)
							return ok, nil
						}
					}
				}
				serve()
			}
			for _, ev := range r.Events {
				revs[e.i] = max(revs[e.i], ev.Kv.ModRevision)
			}
			if len(r.Events) > 0 && mirrors[e.i].apply(r.Events) {
				backends.Notify(changed)
			}
		}
	}
}

// afterSeed, when set (by tests), runs in each session between reading the mirrors and
// creating the watches.
var afterSeed func()

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
		next := cc.GetState()
		if next == st { // it left st and came back before we looked: report the loss too
			select {
			case out <- connectivity.Idle:
			case <-wctx.Done():
				return
			}
		}
		st = next
		select {
		case out <- st:
		case <-wctx.Done():
			return
		}
	}
}
