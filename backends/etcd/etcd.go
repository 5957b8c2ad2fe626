package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reconf/reconf/backends"
)

func init() {
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

// maxTxnOps keeps each transaction under etcd's default --max-txn-ops (128).
const maxTxnOps = 120

// Client reads and watches etcd. It is safe for concurrent use.
type Client struct {
	cfg   Config
	cli   *clientv3.Client
	nodes string // endpoints for error messages

	mu   sync.Mutex
	revs map[string]int64 // cleaned prefix → store revision of the latest Get that read it
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
	return &Client{cfg: cfg, cli: cli, nodes: nodes, revs: map[string]int64{}}, nil
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
// on operations per transaction, several pinned to the first one's revision).
func (c *Client) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	ps := backends.Dedupe(prefixes)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	kv, rev, err := c.read(ctx, ps)
	if errors.Is(err, rpctypes.ErrCompacted) { // a later chunk lost its revision: start again
		kv, rev, err = c.read(ctx, ps)
	}
	if err != nil {
		return nil, classify(c.nodes, fmt.Sprintf("get %s", strings.Join(ps, ",")), err)
	}
	c.mu.Lock()
	for _, p := range ps {
		c.revs[p] = rev
	}
	c.mu.Unlock()
	return kv, nil
}

// pageSize bounds the keys of one range response: a big prefix is read in pages, each turned
// into map entries and dropped before the next arrives, so the raw response and the map are
// never both whole in memory. Smaller pages cost time (etcd 3.4 scans the rest of the range's
// index for every page): for 100,000 keys, pages of 10,000 took 225 ms, of 25,000 185 ms, one
// response 149 ms, and one response raised reconf's peak RSS by about 20 MiB.
const pageSize = 25_000

// keyRange is one range to read: key alone when end is "", else [key, end).
type keyRange struct{ key, end string }

func (r keyRange) op(rev int64) clientv3.Op {
	opts := []clientv3.OpOption{clientv3.WithLimit(pageSize)}
	if r.end != "" {
		opts = append(opts, clientv3.WithRange(r.end))
	}
	if rev != 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	return clientv3.OpGet(r.key, opts...)
}

// read runs the ranges for ps and returns the keys and the revision they were read at. The
// first page of every range comes in one transaction (or, past etcd's limit on operations per
// transaction, several pinned to the first one's revision); further pages are read pinned to
// that revision too.
func (c *Client) read(ctx context.Context, ps []string) (map[string]string, int64, error) {
	var ranges []keyRange
	for _, p := range ps {
		if p == "/" {
			ranges = append(ranges, keyRange{"/", clientv3.GetPrefixRangeEnd("/")})
			continue
		}
		ranges = append(ranges, keyRange{p, ""}, keyRange{p + "/", clientv3.GetPrefixRangeEnd(p + "/")})
	}
	var kv map[string]string
	var rev int64
	var more []keyRange // ranges with pages left, starting after the last key read
	add := func(r keyRange, resp *etcdserverpb.RangeResponse) {
		if kv == nil {
			kv = make(map[string]string, resp.Count)
		}
		addKVs(kv, resp.Kvs)
		if resp.More && len(resp.Kvs) > 0 {
			more = append(more, keyRange{string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00", r.end})
		}
	}
	for start := 0; start < len(ranges); start += maxTxnOps {
		chunk := ranges[start:min(start+maxTxnOps, len(ranges))]
		ops := make([]clientv3.Op, len(chunk))
		for i, r := range chunk {
			ops[i] = r.op(rev)
		}
		resp, err := c.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for i, r := range resp.Responses {
			add(chunk[i], r.GetResponseRange())
		}
	}
	for len(more) > 0 {
		r := more[len(more)-1]
		more = more[:len(more)-1]
		resp, err := c.cli.Do(ctx, r.op(rev))
		if err != nil {
			return nil, 0, err
		}
		add(r, (*etcdserverpb.RangeResponse)(resp.Get()))
	}
	if kv == nil {
		kv = map[string]string{}
	}
	return kv, rev, nil
}

// addKVs copies the keys and values of one response into kv through one string that holds
// them all (two allocations per page instead of two per key).
func addKVs(kv map[string]string, kvs []*mvccpb.KeyValue) {
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
	all := sb.String()
	off := 0
	for _, e := range kvs {
		k := all[off : off+len(e.Key)]
		off += len(e.Key)
		kv[k] = all[off : off+len(e.Value)]
		off += len(e.Value)
	}
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
