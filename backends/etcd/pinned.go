package etcd

import (
	"context"
	"errors"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/reconf/reconf/backends"
)

// Pinned returns a view of the store that reads at one revision: the first read through it
// reads the latest revision and fixes it, every later read is pinned to it. -onetime reads
// groups of resources through such a view (see runner's pinner) instead of holding one
// snapshot of every resource's keys: the resources still render from one revision, while
// only the groups being rendered hold their keys in memory. Reads through the view never come
// from watch mirrors (they follow the latest revision). When the first read finds the store
// unavailable, every later read fails at once with that error instead of waiting out its own
// timeout. A read after the revision was compacted away reads the latest revision instead.
// Closing the view does not close the client.
func (c *Client) Pinned() backends.Backend { return &pinned{c: c} }

type pinned struct {
	c   *Client
	mu  sync.Mutex // held by the first read until it has fixed rev
	rev int64      // the revision read at (0: not yet)
	err error      // the first read's error when the store was unavailable
}

var _ backends.Backend = (*pinned)(nil)

// Get returns every key at or under each prefix at the view's revision.
func (p *pinned) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	return readMap(ctx, prefixes, p.read)
}

// GetSorted is Get returning the keys sorted, with their values in a parallel slice.
func (p *pinned) GetSorted(ctx context.Context, prefixes []string) (keys, values []string, err error) {
	var sp sortedParts
	if err := p.read(ctx, prefixes, sp.reset, sp.add); err != nil {
		return nil, nil, err
	}
	keys, values = sp.join()
	return keys, values, nil
}

// Close does nothing: the client belongs to the caller of Pinned.
func (p *pinned) Close() error { return nil }

func (p *pinned) read(ctx context.Context, prefixes []string, reset func(n int), add func(i int, count int64, kvs []*mvccpb.KeyValue)) error {
	p.mu.Lock()
	if p.rev == 0 && p.err == nil { // the first read: the others wait for its revision
		defer p.mu.Unlock()
		rev, err := p.c.getAt(ctx, prefixes, 0, reset, add)
		if errors.Is(err, backends.ErrUnavailable) {
			p.err = err
		}
		p.rev = rev
		return err
	}
	rev, err := p.rev, p.err
	p.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = p.c.getAt(ctx, prefixes, rev, reset, add)
	return err
}
