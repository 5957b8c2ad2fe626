package redis

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// keySet is the set of Redis names at or under the prefixes of one live Watch, on one node
// connection pool, kept from its keyspace notifications so that Get can skip SCAN (which
// walks the whole keyspace whatever its MATCH).
//
// Rules, which keep the set a superset of the names that exist under its prefixes:
//   - It is built by a SCAN that starts only after every PSUBSCRIBE is confirmed, on the
//     watch's own goroutine: events that arrive during the build wait in the subscription
//     and are applied after it, in order, so none is lost.
//   - Each event is applied before the watch signals changed, so the re-read sees it.
//     del, expired, evicted, rename_from and move_from remove the name; every other event
//     (set, hset, rename_to, move_to, copy_to, restore, … and any type we do not know) adds
//     it. Adding a name that does not exist, or is not a string or hash, is harmless: Get
//     reads every value and skips what is missing or of another type.
//   - Events Redis does not send (FLUSHDB, FLUSHALL) leave names of deleted keys behind:
//     harmless by the same argument. Nothing that creates a key goes unreported, except a
//     SWAPDB or a replica's full resync, which the watch misses as well.
//   - The set is dropped the moment its subscription fails, stalls or is closed, or Watch
//     returns; a build that fails leaves no set.
//   - Get uses it only when every prefix it asks for lies under the set's prefixes and it
//     reads from the same node; otherwise it scans as before.
//   - Every keySetRefresh the watch's goroutine scans again and merges what it found into the
//     set (a union, events queued meanwhile applied after it), so a name the events missed is
//     found again within keySetRefresh: the -interval safety net keeps its meaning.
type keySet struct {
	node      *redis.Client
	prefixes  []string
	names     map[string]struct{}
	refreshed time.Time // when the last SCAN that confirmed names started
}

// keySetRefresh is how long a key set is trusted without a SCAN confirming it.
var keySetRefresh = time.Minute

// keyCache holds the key sets of the live watches.
type keyCache struct {
	mu   sync.Mutex
	sets map[*keySet]struct{}
}

// removeEvents are the keyspace events after which the name no longer exists.
var removeEvents = map[string]bool{
	"del": true, "expired": true, "evicted": true, "rename_from": true, "move_from": true,
}

// buildKeySet scans the names under ps on rc and installs them as a live set. It must be called
// after the subscription is confirmed and before its events are read.
func (c *Client) buildKeySet(ctx context.Context, rc *redis.Client, ps []string) (*keySet, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	names, err := c.scan(ctx, rc, ps)
	if err != nil {
		return nil, err
	}
	ks := &keySet{node: rc, prefixes: ps, names: make(map[string]struct{}, len(names)), refreshed: time.Now()}
	for _, n := range names {
		ks.names[n] = struct{}{}
	}
	c.keys.mu.Lock()
	defer c.keys.mu.Unlock()
	if c.keys.sets == nil {
		c.keys.sets = map[*keySet]struct{}{}
	}
	c.keys.sets[ks] = struct{}{}
	return ks, nil
}

// dropKeySet forgets ks; nil is a no-op.
func (c *Client) dropKeySet(ks *keySet) {
	if ks == nil {
		return
	}
	c.keys.mu.Lock()
	defer c.keys.mu.Unlock()
	delete(c.keys.sets, ks)
}

// applyEvent records a keyspace event for name (a Redis name under ks's prefixes).
func (c *Client) applyEvent(ks *keySet, name, event string) {
	if ks == nil {
		return
	}
	c.keys.mu.Lock()
	defer c.keys.mu.Unlock()
	if removeEvents[event] {
		delete(ks.names, name)
	} else {
		ks.names[name] = struct{}{}
	}
}

// cachedNames returns the names at or under ps known from the live sets on rc, and whether
// the sets cover every prefix in ps.
func (c *Client) cachedNames(rc *redis.Client, ps []string) ([]string, bool) {
	c.keys.mu.Lock()
	defer c.keys.mu.Unlock()
	var use []*keySet
	for _, p := range ps {
		var found *keySet
		for ks := range c.keys.sets {
			if ks.node == rc && underAny(p, ks.prefixes) {
				found = ks
				break
			}
		}
		if found == nil {
			return nil, false
		}
		use = append(use, found)
	}
	done := map[*keySet]bool{}
	seen := map[string]struct{}{}
	var names []string
	for _, ks := range use {
		if done[ks] {
			continue
		}
		done[ks] = true
		for n := range ks.names {
			if _, dup := seen[n]; !dup && underAny(c.fromRedis(n), ps) {
				seen[n] = struct{}{}
				names = append(names, n)
			}
		}
	}
	return names, true
}

// refreshKeySet scans ks's prefixes again when keySetRefresh has passed and adds what it found
// to ks. It runs on the watch's goroutine, so events that arrive meanwhile wait in the
// subscription and are applied after it. A failed scan keeps the set as it is.
func (c *Client) refreshKeySet(ctx context.Context, ks *keySet) {
	if ks == nil || time.Since(ks.refreshed) < keySetRefresh {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	names, err := c.scan(ctx, ks.node, ks.prefixes)
	c.keys.mu.Lock()
	defer c.keys.mu.Unlock()
	ks.refreshed = start
	if err != nil {
		return
	}
	for _, n := range names {
		ks.names[n] = struct{}{}
	}
}
