package consul

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/backends"
)

// Watch implements backends.Watcher with one blocking query per deduplicated prefix. It
// signals once when each query is first in place (a change between the caller's Get and that
// moment could not be seen otherwise), when the entries under a prefix changed, once after a
// failed query succeeds again, and when the index goes backwards. It returns ctx.Err() when
// ctx is done.
func (c *Client) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	var wg sync.WaitGroup
	for _, p := range backends.Dedupe(prefixes) {
		wg.Go(func() {
			c.block(ctx, "kv "+p, changed, func(ctx context.Context, q *api.QueryOptions) (uint64, uint64, error) {
				pairs, meta, err := c.api.KV().List(consulKey(p), q.WithContext(ctx))
				if err != nil {
					return 0, 0, c.wrap("watch "+p, err)
				}
				return meta.LastIndex, kvFingerprint(pairs, p), nil
			})
		})
	}
	wg.Wait()
	return ctx.Err()
}

// query runs one blocking query with q's WaitIndex and WaitTime and returns the new index and
// a fingerprint of what the caller cares about in the answer.
type query func(ctx context.Context, q *api.QueryOptions) (index, fingerprint uint64, err error)

// block runs q as a blocking query until ctx is done, signalling changed on its first answer,
// as cursor.next says, and once after errors stop. Queries are rate limited by a token bucket
// (QueryBurst queries at once, refilled one per MinGap): a change right after another is
// still seen at once, while a store that answers every query at once (flapping, an index
// reset loop) is held to one query per MinGap. Errors back off.
func (c *Client) block(ctx context.Context, what string, changed chan<- struct{}, q query) {
	log := c.cfg.Logger.With("backend", "consul", "watch", what)
	var (
		cur     cursor
		failed  bool
		attempt int
		bucket  = tokenBucket{burst: QueryBurst, every: c.cfg.MinGap}
	)
	for {
		if !sleep(ctx, bucket.take(time.Now())) {
			return
		}
		// Consul adds up to WaitTime/16 of jitter; past that plus RequestTimeout the agent
		// is stalled (frozen, or a connection silently dropped) and the query is retried.
		qctx, cancel := context.WithTimeout(ctx, c.cfg.WaitTime+c.cfg.WaitTime/16+c.cfg.RequestTimeout)
		index, fp, err := q(qctx, &api.QueryOptions{WaitIndex: cur.index, WaitTime: c.cfg.WaitTime})
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !failed {
				log.Warn("consul blocking query failed; retrying with backoff", "err", err)
			} else {
				log.Debug("consul blocking query failed again", "err", err, "attempt", attempt)
			}
			failed = true
			// The agent may come back restarted with a lower index: a query that kept the
			// old WaitIndex would block for the whole WaitTime before noticing. Ask with 0
			// (answered at once) and let the fingerprint say whether anything changed.
			cur.index = 0
			if !sleep(ctx, backends.Backoff(attempt, c.cfg.BackoffBase, c.cfg.BackoffMax)) {
				return
			}
			attempt++
			continue
		}
		next, signal := cur.next(index, fp)
		if !cur.primed {
			// The query is now in place; a change made since the caller's last Get (before
			// the first answer) could not be seen otherwise.
			signal = true
		}
		if failed {
			log.Info("consul blocking query recovered")
			signal, failed, attempt = true, false, 0
		}
		if next.index < cur.index {
			log.Info("consul index went backwards; resetting", "from", cur.index, "to", index)
		}
		cur = next
		if signal {
			backends.Notify(changed)
		}
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

// kvFingerprint hashes the keys and modify indexes of the pairs under p, by path.
func kvFingerprint(pairs api.KVPairs, p string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, kv := range pairs {
		if !backends.UnderPrefix(consulPath(kv.Key), p) {
			continue
		}
		h.Write([]byte(kv.Key))
		binary.BigEndian.PutUint64(b[:], kv.ModifyIndex)
		h.Write(b[:])
	}
	return h.Sum64()
}

// sleep waits d (nothing if d <= 0) and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// tokenBucket limits how often blocking queries start: up to burst at once, refilled by one
// every every.
type tokenBucket struct {
	burst  float64
	every  time.Duration
	tokens float64
	last   time.Time
}

// take spends one token at now and returns how long to wait before starting (0 if a token was
// there).
func (b *tokenBucket) take(now time.Time) time.Duration {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else {
		b.tokens = min(b.burst, b.tokens+float64(now.Sub(b.last))/float64(b.every))
	}
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	wait := time.Duration(-b.tokens * float64(b.every))
	b.tokens = 0
	b.last = now.Add(wait)
	return wait
}
