package etcd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"

	"github.com/reconf/reconf/backends"
)

func init() {
	experimental.SetDefaultBufferPool(bufferPool())
	for _, name := range []string{"etcd", "etcdv3"} {
		backends.Register(name, func(o backends.Options) (backends.Backend, error) {
			c, err := FromOptions(name, o)
			if err != nil {
				return nil, err
			}
			return New(c)
		})
	}
}

// bufferPool is the gRPC buffer pool for the process (gRPC's default for every client, and the
// only one its proto codec uses): tiers at every power of two from 256 bytes to 1 MiB. gRPC's
// own default has tiers of 256 B, 4, 16 and 32 KiB and 1 MiB, so every response between 32 KiB
// and 1 MiB (a read of a few hundred to 20,000 keys) was copied into a 1 MiB buffer before
// being decoded, and the pool kept those buffers alive: with four resources reading at once,
// -onetime over 50 × 1,000 keys peaked at 38–40 MiB RSS, with these tiers at 34–37 MiB.
func bufferPool() mem.BufferPool {
	pool, err := mem.NewBinaryTieredBufferPool(8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
	if err != nil {
		panic(err) // the exponents are constants
	}
	return pool
}

// maxTxnOps keeps each transaction under etcd's default --max-txn-ops (128).
const maxTxnOps = 120

// Client reads and watches etcd. It is safe for concurrent use.
type Client struct {
	cfg   Config
	cli   *clientv3.Client
	nodes string // endpoints for error messages

	mu   sync.Mutex
	revs map[string]int64 // cleaned prefix → store revision of the latest Get that read it

	steer steering // away from members that stopped answering (see steer.go)

	mirrors    backends.COWList[*mirror] // the mirrors of the running watches
	serverGets atomic.Int64              // Get and GetSorted calls that read the server (for tests)
	budget     int                       // keys asked for per read transaction (pageBudget; tests lower it)
}

var (
	_ backends.Backend = (*Client)(nil)
	_ backends.Watcher = (*Client)(nil)
)

// New validates cfg and connects. Without credentials connecting is lazy: New succeeds while
// etcd is down and Get reports backends.ErrUnavailable. With credentials New authenticates.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	nodes := strings.Join(cfg.Endpoints, ",")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: cfg.DialTimeout,
		TLS:                  tlsCfg,
		Username:             cfg.Username,
		Password:             cfg.Password,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, classify(nodes, "connect", err)
	}
	return &Client{cfg: cfg, cli: cli, nodes: nodes, revs: map[string]int64{}, budget: pageBudget}, nil
}

// classify wraps err with the place and the sentinel that says whether retrying can help.
// etcd's errors never carry the password.
func classify(nodes, op string, err error) error {
	sentinel := backends.ErrUnavailable
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("etcd %s: %s: %w", nodes, op, err)
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrPermissionDenied),
		errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrUserNotFound),
		errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrAuthOldRevision):
		sentinel = backends.ErrAuth
	}
	return fmt.Errorf("etcd %s: %s: %w: %w", nodes, op, sentinel, err)
}

// Close releases the connection.
func (c *Client) Close() error { return c.cli.Close() }

// Get returns every key at or under each prefix, read in one transaction (or, past etcd's limit
// on operations per transaction, several pinned to the first one's revision). While a Watch
// keeps a healthy mirror of every prefix asked for, Get answers from memory (see mirror).
func (c *Client) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	var kv map[string]string
	if c.fromMirrors(ctx, backends.Dedupe(prefixes), func(keys, values []string) {
		if kv == nil {
			kv = make(map[string]string, len(keys))
		}
		for i, k := range keys {
			kv[k] = values[i]
		}
	}) {
		if kv == nil {
			kv = map[string]string{}
		}
		return kv, nil
	}
	return readMap(ctx, prefixes, c.get)
}

// reader reads prefixes as Client.get does: reset once with the number of keys to come, then
// add for each part of the answer.
type reader func(ctx context.Context, prefixes []string, reset func(n int), add func(i int, count int64, kvs []*mvccpb.KeyValue)) error

// readMap collects what read returns for prefixes into a map (Get's answer).
func readMap(ctx context.Context, prefixes []string, read reader) (map[string]string, error) {
	var kv map[string]string
	err := read(ctx, prefixes, func(n int) {
		kv = make(map[string]string, n)
	}, func(_ int, _ int64, kvs []*mvccpb.KeyValue) {
		addKVs(kv, kvs)
	})
	if err != nil {
		return nil, err
	}
	return kv, nil
}

// GetSorted is Get returning the keys sorted, with their values in a parallel slice. It builds
// no map and sorts no keys: etcd returns each range sorted and the ranges are disjoint, so they
// are concatenated in the order of their start keys. Like Get it answers from the watch
// mirrors when they cover every prefix.
func (c *Client) GetSorted(ctx context.Context, prefixes []string) (keys, values []string, err error) {
	ps := backends.Dedupe(prefixes)
	var mp sortedParts
	if c.fromMirrors(ctx, ps, func(keys, values []string) {
		mp.parts = append(mp.parts, part{slices.Clone(keys), slices.Clone(values)})
	}) {
		keys, values = mp.join()
		return keys, values, nil
	}
	var sp sortedParts
	if err := c.get(ctx, prefixes, sp.reset, sp.add); err != nil {
		return nil, nil, err
	}
	keys, values = sp.join()
	return keys, values, nil
}

// part is a run of keys in order with their values.
type part struct{ keys, values []string }

// sortedParts collects the pages of a read, by range index; each page is sliced into strings
// as it arrives.
type sortedParts struct{ parts []part }

func (s *sortedParts) reset(int) { s.parts = s.parts[:0] }

func (s *sortedParts) add(i int, count int64, kvs []*mvccpb.KeyValue) {
	for len(s.parts) <= i {
		s.parts = append(s.parts, part{})
	}
	p := &s.parts[i]
	if p.keys == nil && len(kvs) > 0 { // the range's first page: count is all of it
		n := max(int(count), len(kvs))
		p.keys, p.values = make([]string, 0, n), make([]string, 0, n)
	}
	p.keys, p.values = appendKVs(p.keys, p.values, kvs)
}

// join returns the keys of the parts in order, with their values. The parts are runs in key
// order and disjoint as intervals (the ranges of different prefixes never interleave), so
// they are concatenated in the order of their first keys. A single part is returned as is
// (the common case: no copy).
func (s *sortedParts) join() (keys, values []string) {
	parts := slices.DeleteFunc(s.parts, func(p part) bool { return len(p.keys) == 0 })
	slices.SortFunc(parts, func(a, b part) int { return strings.Compare(a.keys[0], b.keys[0]) })
	switch len(parts) {
	case 0:
		return []string{}, []string{}
	case 1:
		return parts[0].keys, parts[0].values
	}
	n := 0
	for _, p := range parts {
		n += len(p.keys)
	}
	keys, values = make([]string, 0, n), make([]string, 0, n)
	for _, p := range parts {
		keys = append(keys, p.keys...)
		values = append(values, p.values...)
	}
	return keys, values
}

// get reads prefixes (deduplicated) at the latest revision (see getAt).
func (c *Client) get(ctx context.Context, prefixes []string, reset func(n int), add func(i int, count int64, kvs []*mvccpb.KeyValue)) error {
	_, err := c.getAt(ctx, prefixes, 0, reset, add)
	return err
}

// getAt reads prefixes (deduplicated) at revision rev (0: the latest; a revision compacted
// away: the latest too) and hands every page to add with the index of its range in ranges(ps)
// and the number of keys left in that range from the page on. reset is called with the
// expected number of keys before the first page of each attempt (a compacted revision makes
// it start again). It returns the revision read.
func (c *Client) getAt(ctx context.Context, prefixes []string, rev int64, reset func(n int), add func(i int, count int64, kvs []*mvccpb.KeyValue)) (int64, error) {
	ps := backends.Dedupe(prefixes)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	c.serverGets.Add(1)
	got, err := c.readAt(ctx, ps, rev, reset, add)
	if rev != 0 && errors.Is(err, rpctypes.ErrCompacted) {
		got, err = c.readAt(ctx, ps, 0, reset, add)
	}
	if err != nil {
		return 0, classify(c.nodes, fmt.Sprintf("get %s", strings.Join(ps, ",")), err)
	}
	c.mu.Lock()
	for _, p := range ps {
		c.revs[p] = got
	}
	c.mu.Unlock()
	return got, nil
}

// readAt is read at revision rev (0: the latest). At the latest revision a compaction between
// chunks (a later chunk lost its revision) makes it start again; at a given revision the
// caller decides.
func (c *Client) readAt(ctx context.Context, ps []string, rev int64, reset func(n int), add func(i int, count int64, kvs []*mvccpb.KeyValue)) (int64, error) {
	got, err := c.read(ctx, ps, rev, reset, add)
	if rev == 0 && errors.Is(err, rpctypes.ErrCompacted) {
		got, err = c.read(ctx, ps, 0, reset, add)
	}
	return got, err
}

// pageSize bounds the keys of one range response and pageBudget the keys asked for in one
// transaction: a big read comes in pages, each turned into strings and dropped before the
// next arrives, so the decoded response (protobuf structs and gRPC buffers, about twice the
// size of the strings made from it) is never whole in memory. One transaction for the 100
// ranges of 50 prefixes × 1,000 keys raised -onetime's peak RSS from 45 to 60 MiB. Smaller
// pages cost time: etcd 3.4 walks the rest of a range's index for every page (to count it);
// for 100,000 keys pages of 10,000 took 225 ms, of 25,000 185 ms, one response 149 ms. So a
// lone range of unknown size is asked for pageSize keys, and ranges read together share
// pageBudget; once a range's size is known the rest of it comes in pages of up to pageSize.
const (
	pageSize   = 25_000
	pageBudget = 8_192
)

// keyRange is one range to read: key alone when end is "", else [key, end).
type keyRange struct{ key, end string }

func (r keyRange) op(rev int64, limit int) clientv3.Op {
	opts := []clientv3.OpOption{clientv3.WithLimit(int64(limit))}
	if r.end != "" {
		opts = append(opts, clientv3.WithRange(r.end))
	}
	if rev != 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	return clientv3.OpGet(r.key, opts...)
}

// ranges returns the key ranges that hold ps (cleaned, deduplicated): the key itself and the
// keys below it by path, or every key for the root. They are disjoint.
func ranges(ps []string) []keyRange {
	var rs []keyRange
	for _, p := range ps {
		if p == "/" {
			rs = append(rs, keyRange{"/", clientv3.GetPrefixRangeEnd("/")})
			continue
		}
		rs = append(rs, keyRange{p, ""}, keyRange{p + "/", clientv3.GetPrefixRangeEnd(p + "/")})
	}
	return rs
}

// pending is a range (index i in ranges(ps)) still to read from r.key on, with left keys in
// it as far as known (-1: not yet asked).
type pending struct {
	i    int
	r    keyRange
	left int
}

// limit is the page to ask for: one key, the rest of a range whose size is known (up to
// pageSize), pageSize for the last range of unknown size, or a share of the budget (keys per
// transaction) among the unknown ranges still to read.
func (p pending) limit(unknown, budget int) int {
	switch {
	case p.r.end == "":
		return 1
	case p.left >= 0:
		return min(p.left, pageSize)
	case unknown <= 1:
		return pageSize
	}
	return max(64, budget/unknown)
}

// read runs ranges(ps) at revision rev (0: the latest) and returns the revision they were read
// at, handing each page to add. The first transaction fixes the revision; every later one is
// pinned to it. Each transaction asks for at most c.budget keys (at most maxTxnOps ranges),
// except a lone range, which asks for up to pageSize; a range's pages come in key order.
func (c *Client) read(ctx context.Context, ps []string, rev int64, reset func(n int), add func(i int, count int64, kvs []*mvccpb.KeyValue)) (int64, error) {
	rs := ranges(ps)
	queue := make([]pending, len(rs))
	unknown := 0 // ranges (not single keys) whose size is not known yet
	for i, r := range rs {
		queue[i] = pending{i, r, -1}
		if r.end != "" {
			unknown++
		}
	}
	first := true
	for len(queue) > 0 {
		// take ranges from the front while their pages fit the budget
		var batch []pending
		var limits []int
		sum := 0
		for len(queue) > 0 && len(batch) < maxTxnOps {
			p := queue[0]
			l := p.limit(unknown, c.budget)
			if len(batch) > 0 && p.r.end != "" && sum+l > c.budget {
				break
			}
			batch, limits, sum = append(batch, p), append(limits, l), sum+l
			queue = queue[1:]
		}
		ops := make([]clientv3.Op, len(batch))
		for j, p := range batch {
			ops[j] = p.r.op(rev, limits[j])
		}
		resp, err := c.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for j, op := range resp.Responses {
			rr := op.GetResponseRange()
			if first {
				reset(int(rr.Count))
				first = false
			}
			p := batch[j]
			if p.left < 0 && p.r.end != "" {
				unknown--
			}
			add(p.i, rr.Count, rr.Kvs)
			if rr.More && len(rr.Kvs) > 0 {
				queue = append(queue, pending{p.i, keyRange{string(rr.Kvs[len(rr.Kvs)-1].Key) + "\x00", p.r.end}, int(rr.Count) - len(rr.Kvs)})
			}
		}
	}
	if first {
		reset(0)
	}
	return rev, nil
}

// addKVs copies the keys and values of one response into kv through one string that holds
// them all (two allocations per page instead of two per key).
func addKVs(kv map[string]string, kvs []*mvccpb.KeyValue) {
	all := joinKVs(kvs)
	off := 0
	for _, e := range kvs {
		k := all[off : off+len(e.Key)]
		off += len(e.Key)
		kv[k] = all[off : off+len(e.Value)]
		off += len(e.Value)
	}
}

// appendKVs appends the keys and values of one response, sliced from one string.
func appendKVs(keys, values []string, kvs []*mvccpb.KeyValue) ([]string, []string) {
	all := joinKVs(kvs)
	off := 0
	for _, e := range kvs {
		keys = append(keys, all[off:off+len(e.Key)])
		off += len(e.Key)
		values = append(values, all[off:off+len(e.Value)])
		off += len(e.Value)
	}
	return keys, values
}

// joinKVs returns the keys and values of kvs, each key followed by its value, in one string.
func joinKVs(kvs []*mvccpb.KeyValue) string {
	n := 0
	for _, e := range kvs {
		n += len(e.Key) + len(e.Value)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, e := range kvs {
		sb.Write(e.Key)
		sb.Write(e.Value)
	}
	return sb.String()
}

// startRev returns the revision a watch of prefix p may start after: the revision of the
// latest Get that covered it, or 0 when none did.
func (c *Client) startRev(p string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rev int64
	for q, r := range c.revs {
		if backends.UnderPrefix(p, q) && (rev == 0 || r < rev) {
			rev = r
		}
	}
	return rev
}
