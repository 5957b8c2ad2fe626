package register

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/discovery"
	"go.uber.org/zap"
)

// errGone: the instance's key, lease or session is no longer there.
var errGone = errors.New("instance no longer registered")

// etcdStore keeps the instance under a lease that expires TTL after the last keep-alive.
type etcdStore struct {
	cli   *clientv3.Client
	key   string
	val   string
	ttl   int64
	lease clientv3.LeaseID
	c     Config
}

var _ store = (*etcdStore)(nil)

func newEtcd(c Config, _ *slog.Logger) (*etcdStore, error) {
	o := c.Options
	tlsCfg, err := tlsConfig(o)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if tlsCfg != nil || o.Scheme == "https" {
		scheme = "https"
	}
	var eps []string
	for _, n := range nodesOr(o.Nodes, "127.0.0.1:2379") {
		if !strings.Contains(n, "://") {
			n = scheme + "://" + n
		}
		eps = append(eps, n)
	}
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: o.Dial(), TLS: tlsCfg, Logger: zap.NewNop()}
	if o.Username != "" {
		cfg.Username, cfg.Password = o.Username, o.Password
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: etcd %v: %w", backends.ErrUnavailable, eps, err)
	}
	val, err := discovery.Encode(c.Instance)
	if err != nil {
		cli.Close()
		return nil, err
	}
	return &etcdStore{
		cli: cli,
		key: discovery.Key(o.ServicesPrefix, c.Instance.Name, c.Instance.ID),
		val: string(val),
		ttl: int64(math.Ceil(c.TTL.Seconds())),
		c:   c,
	}, nil
}

func (e *etcdStore) req(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.c.Options.Request())
}

func (e *etcdStore) Register(ctx context.Context) error {
	ctx, cancel := e.req(ctx)
	defer cancel()
	if e.lease != 0 {
		_, _ = e.cli.Revoke(ctx, e.lease) // a lost lease is fine; a live one must not linger
		e.lease = 0
	}
	l, err := e.cli.Grant(ctx, e.ttl)
	if err != nil {
		return fmt.Errorf("etcd: grant lease: %w", err)
	}
	if _, err := e.cli.Put(ctx, e.key, e.val, clientv3.WithLease(l.ID)); err != nil {
		_, _ = e.cli.Revoke(ctx, l.ID)
		return fmt.Errorf("etcd: put %s: %w", e.key, err)
	}
	e.lease = l.ID
	return nil
}

func (e *etcdStore) Refresh(ctx context.Context) error {
	ctx, cancel := e.req(ctx)
	defer cancel()
	if _, err := e.cli.KeepAliveOnce(ctx, e.lease); err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("etcd: keep-alive %s: %w: %w", e.key, errGone, err)
		}
		return fmt.Errorf("etcd: keep-alive %s: %w", e.key, err)
	}
	r, err := e.cli.Get(ctx, e.key, clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("etcd: get %s: %w", e.key, err)
	}
	if r.Count == 0 {
		return fmt.Errorf("etcd: %s: %w", e.key, errGone)
	}
	return nil
}

func (e *etcdStore) Down(ctx context.Context) error { return e.Deregister(ctx) }

func (e *etcdStore) Deregister(ctx context.Context) error {
	ctx, cancel := e.req(ctx)
	defer cancel()
	if e.lease != 0 {
		_, _ = e.cli.Revoke(ctx, e.lease)
		e.lease = 0
	}
	if _, err := e.cli.Delete(ctx, e.key); err != nil {
		return fmt.Errorf("etcd: delete %s: %w", e.key, err)
	}
	return nil
}

func (e *etcdStore) Close() error { return e.cli.Close() }
