package consul

import (
	"context"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/backends"
)

// Watch implements backends.Watcher with one blocking query per deduplicated prefix, or, for
// prefixes that share a parent folder with those of other live watches of this client, one
// shared blocking query on that folder while it costs little (share.go). It signals once when
// each prefix's query is first in place (a change between the caller's Get and that moment
// could not be seen otherwise), when what Get returns for a prefix changed, once after a
// failed query succeeds again, and when the index goes backwards. While it runs, Get serves
// the prefixes it watches from its answers (mirror.go). It returns ctx.Err() when ctx is done.
func (c *Client) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	var wg sync.WaitGroup
	for _, p := range backends.Dedupe(prefixes) {
		w := &kvWatch{c: c, prefix: p}
		if c.cfg.MirrorTTL > 0 {
			w.m = &mirror{prefix: p}
			c.mirrors.add(w.m)
		}
		t := &tracker{changed: changed, obs: w}
		wg.Go(func() {
			if w.m != nil {
				defer c.mirrors.remove(w.m)
				defer w.m.close()
				defer context.AfterFunc(ctx, w.m.close)()
			}
			c.watchShared(ctx, w, t)
		})
	}
	wg.Wait()
	return ctx.Err()
}

// kvWatch is the blocking query on one prefix and its mirror (nil when Config.MirrorTTL is
// negative). Only the watch's goroutine uses it.
type kvWatch struct {
	c       *Client
	prefix  string
	m       *mirror
	pending *kvData // the latest answer, until block says what it was
	last    *kvData // the answer the mirror serves
}

// query lists the prefix as Get would, as a blocking query, and returns the answer's index
// and the fingerprint of what Get would return.
func (w *kvWatch) query(ctx context.Context, q *api.QueryOptions) (uint64, uint64, error) {
	if w.m != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { w.m.setConn(info.Conn) },
		})
	}
	l, d, err := w.c.listData(ctx, w.prefix, blocking{index: q.WaitIndex, wait: q.WaitTime})
	if err != nil {
		return 0, 0, w.c.wrap("watch "+w.prefix, err)
	}
	w.pending = d
	return l.index, w.pending.fp, nil
}

func (w *kvWatch) answered(index uint64, changed bool) {
	if w.m == nil {
		return
	}
	d := w.pending
	if !changed && w.last != nil {
		d = w.last // the same content (or an index that did not move): keep it
	}
	w.pending, w.last = nil, d
	w.m.publish(index, d)
}

func (w *kvWatch) failed() {
	w.pending, w.last = nil, nil
	if w.m != nil {
		w.m.stop()
	}
}

// query runs one blocking query with q's WaitIndex and WaitTime and returns the new index and
// a fingerprint of what the caller cares about in the answer.
type query func(ctx context.Context, q *api.QueryOptions) (index, fingerprint uint64, err error)

// observer hears how each blocking query ended, before block signals for it.
type observer interface {
	// answered: the query succeeded with index (the cursor's, never 0); changed: what the
	// caller cares about changed since the last answer.
	answered(index uint64, changed bool)
	// failed: the query failed, or its index went backwards (the store was rebuilt).
	failed()
}

// tracker turns the answers of the blocking queries that serve one watch into its signals and
// its observer's calls. Its queries may change (share.go: its own, then a shared one on its
// folder, then its own again), so it keeps what one query's loop would: the cursor and whether
// a failure is to be followed by a signal. One goroutine at a time uses it.
type tracker struct {
	changed chan<- struct{}
	obs     observer // nil: none
	cur     cursor
	failed  bool // a query failed since the last answer: the next answer signals
}

// target is what run tells of each query's outcome: a tracker, or a shared folder query that
// tells the trackers of its members (share.go).
type target interface {
	// answer folds in a successful answer and returns the index to wait on next (0: the
	// index went backwards; the next query is answered at once).
	answer(index, fp uint64) (wait uint64)
	// lost: the query failed (failed) or was abandoned to be sent again at once; the next
	// query asks from index 0.
	lost(failed bool)
}

// answer signals as cursor.next says, on the first answer (the query is now in place, and a
// change made since the caller's last Get could not be seen otherwise), and on the first
// answer after a failure; the observer hears first.
func (t *tracker) answer(index, fp uint64) uint64 {
	wait, signal := t.fold(index, fp)
	if signal {
		backends.Notify(t.changed)
	}
	return wait
}

// fold is answer without the signal: it returns the index to wait on and whether to signal.
func (t *tracker) fold(index, fp uint64) (wait uint64, signal bool) {
	next, diff := t.cur.next(index, fp)
	signal = diff || !t.cur.primed || t.failed
	t.failed = false
	if t.obs != nil {
		if next.index == 0 { // reset: the next answer re-primes
			t.obs.failed()
		} else {
			t.obs.answered(next.index, diff)
		}
	}
	t.cur = next
	return next.index, signal
}

func (t *tracker) lost(failed bool) {
	if t.obs != nil {
		t.obs.failed()
	}
	// The agent may come back restarted with a lower index: a query that kept the old
	// WaitIndex would block for the whole WaitTime before noticing. Ask with 0 (answered at
	// once) and let the fingerprint say whether anything changed.
	t.cur.index = 0
	t.failed = t.failed || failed
}

// block runs q as a blocking query until ctx is done, signalling changed as tracker.answer
// says and once after errors stop; obs (if not nil) hears of every outcome first.
func (c *Client) block(ctx context.Context, what string, changed chan<- struct{}, q query, obs observer) {
	c.run(ctx, what, q, &tracker{changed: changed, obs: obs})
}

// run runs q as a blocking query until ctx is done and tells t of every outcome. Queries are
// rate limited by a token bucket (QueryBurst queries at once, refilled one per MinGap, the gap
// growing while answers keep coming at once): a change right after another is still seen at
// once, a burst of writes costs one query per MinGap and its last write is seen within about
// MinGap, while a store that answers every query at once for good (flapping, an index reset
// loop) is held to one query per MaxQueryGap. Errors back off.
func (c *Client) run(ctx context.Context, what string, q query, t target) {
	log := c.cfg.Logger.With("backend", "consul", "watch", what)
	defer c.startProber()()
	c.adviseAgent(ctx)
	var (
		wait    uint64 // the index to wait on
		failed  bool
		attempt int
		bucket  = tokenBucket{burst: QueryBurst, every: c.cfg.MinGap, hold: QueryGapHold, max: max(MaxQueryGap, c.cfg.MinGap)}
	)
	for {
		if !sleep(ctx, bucket.take(time.Now()), nil) {
			return
		}
		// Consul adds up to WaitTime/16 of jitter; past that plus RequestTimeout the agent
		// is stalled (frozen, or a connection silently dropped) and the query is retried.
		// The prober cancels gen when the agent may hold the query at a frozen server
		// (stall.go): it is then sent again at once.
		gen := c.generation()
		qctx, cancel := context.WithTimeout(ctx, c.cfg.WaitTime+c.cfg.WaitTime/16+c.cfg.RequestTimeout)
		stopGen := context.AfterFunc(gen, cancel)
		index, fp, err := q(qctx, &api.QueryOptions{WaitIndex: wait, WaitTime: c.cfg.WaitTime})
		stopGen()
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && gen.Err() != nil {
			log.Debug("consul blocking query sent again: the agent answers again or the leader changed")
			t.lost(false) // until the new query answers (at once: index 0)
			wait = 0
			continue
		}
		if err != nil {
			t.lost(true)
			if !failed {
				log.Warn("consul blocking query failed; retrying with backoff", "err", err)
			} else {
				log.Debug("consul blocking query failed again", "err", err, "attempt", attempt)
			}
			failed = true
			wait = 0
			// A new leader or an agent that answers again cuts the wait short.
			if !sleep(ctx, backends.Backoff(attempt, c.cfg.BackoffBase, c.cfg.BackoffMax), c.generation().Done()) {
				return
			}
			attempt++
			continue
		}
		c.markHeard()
		if failed {
			log.Info("consul blocking query recovered")
			failed, attempt = false, 0
		}
		next := t.answer(index, fp)
		if next == 0 {
			log.Info("consul index went backwards; resetting", "from", wait, "to", index)
		}
		wait = next
	}
}

// cursor is the state of one blocking query: the index to wait on and a fingerprint of the
// last answer.
type cursor struct {
	index  uint64
	fp     uint64
	primed bool // an answer has been seen
}

// next folds one answer (its index and fingerprint) into c and says whether to signal:
//   - the first answer only primes the cursor;
//   - an unchanged index is a timeout of the wait: nothing changed;
//   - an index that went backwards means the store was restored or rebuilt: reset to 0 (the
//     next query returns at once and re-primes the fingerprint) and signal;
//   - an index that moved forward signals only if the fingerprint changed (Consul's index
//     can move for writes that do not touch what we read).
//
// Consul never should answer index 0; it is read as 1 so that a query always blocks.
func (c cursor) next(index, fp uint64) (cursor, bool) {
	index = max(index, 1)
	switch {
	case !c.primed:
		return cursor{index: index, fp: fp, primed: true}, false
	case index < c.index:
		return cursor{index: 0, fp: fp, primed: true}, true
	case index == c.index:
		return c, false
	default:
		return cursor{index: index, fp: fp, primed: true}, fp != c.fp
	}
}

// sleep waits d (nothing if d <= 0), or less if wake (nil: never) is closed first, and
// reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
		return ctx.Err() == nil
	case <-t.C:
		return true
	}
}

// tokenBucket limits how often blocking queries start: up to burst at once, refilled by one
// every gap. The gap is every until the answers have kept coming soon (each within 4 × every of
// its query's start: the store keeps changing) for hold, then doubles for each further hold,
// up to max; an answer that took longer (the store was quiet a while) resets it.
type tokenBucket struct {
	burst     float64
	every     time.Duration
	hold, max time.Duration // hold 0: the gap never grows
	tokens    float64
	last      time.Time // when the last query started
	busy      time.Time // since when every answer came soon (zero: the last one did not)
}

// gap is the refill interval at now.
func (b *tokenBucket) gap(now time.Time) time.Duration {
	g := b.every
	if b.busy.IsZero() || b.hold <= 0 {
		return g
	}
	for n := now.Sub(b.busy) / b.hold; n > 0 && g < b.max; n-- {
		g *= 2
	}
	return min(g, max(b.max, b.every))
}

// take is called when the last query was answered (or failed), at now, before the next one.
// It spends a token and returns how long to wait before starting (0 if a token was there).
func (b *tokenBucket) take(now time.Time) time.Duration {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else {
		switch {
		case now.Sub(b.last) >= 4*b.every:
			b.busy = time.Time{}
		case b.busy.IsZero():
			b.busy = b.last
		}
		b.tokens = min(b.burst, b.tokens+float64(now.Sub(b.last))/float64(b.gap(now)))
	}
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	wait := time.Duration(-b.tokens * float64(b.gap(now)))
	b.tokens = 0
	b.last = now.Add(wait)
	return wait
}
