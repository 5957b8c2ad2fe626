package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

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

// read runs the ranges for ps and returns the keys and the revision they were read at.
func (c *Client) read(ctx context.Context, ps []string) (map[string]string, int64, error) {
	var ops []clientv3.Op
	for _, p := range ps {
		if p == "/" {
			ops = append(ops, clientv3.OpGet("/", clientv3.WithPrefix()))
			continue
		}
		ops = append(ops, clientv3.OpGet(p), clientv3.OpGet(p+"/", clientv3.WithPrefix()))
	}
	kv := make(map[string]string)
	var rev int64
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps)
		chunk := ops[:n]
		ops = ops[n:]
		if rev != 0 {
			pinned := make([]clientv3.Op, len(chunk))
			for i, op := range chunk {
				pinned[i] = clientv3.OpGet(string(op.KeyBytes()), withRange(op, rev)...)
			}
			chunk = pinned
		}
		resp, err := c.cli.Txn(ctx).Then(chunk...).Commit()
		if err != nil {
			return nil, 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, r := range resp.Responses {
			for _, e := range r.GetResponseRange().Kvs {
				kv[string(e.Key)] = string(e.Value)
			}
		}
	}
	return kv, rev, nil
}

// withRange repeats op's range end and pins it at rev.
func withRange(op clientv3.Op, rev int64) []clientv3.OpOption {
	opts := []clientv3.OpOption{clientv3.WithRev(rev)}
	if end := op.RangeBytes(); len(end) > 0 {
		opts = append(opts, clientv3.WithRange(string(end)))
	}
	return opts
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
