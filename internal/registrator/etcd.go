package registrator

import (
	"context"
	"errors"
	"fmt"
	"math"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/discovery"
)

// etcdRegistry writes the key convention on etcd v3. With -ttl every key hangs on one lease
// that -ttl-refresh keeps alive; without it keys do not expire (registrator's default).
type etcdRegistry struct {
	cli   *clientv3.Client
	c     registryConfig
	lease clientv3.LeaseID
}

var _ Registry = (*etcdRegistry)(nil)

func newEtcd(c registryConfig) (*etcdRegistry, error) {
	host := c.URI.Host
	if host == "" {
		host = "127.0.0.1:2379"
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + host}, DialTimeout: c.Timeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("%w: etcd %s: %w", backends.ErrUnavailable, host, err)
	}
	return &etcdRegistry{cli: cli, c: c}, nil
}

func (r *etcdRegistry) Ping(ctx context.Context) error {
	if _, err := r.cli.Get(ctx, "/", clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	return nil
}

func (r *etcdRegistry) ttl() int64 { return int64(math.Ceil(r.c.TTL.Seconds())) }

func (r *etcdRegistry) Register(ctx context.Context, s *Service) error {
	val, err := r.c.encode(s)
	if err != nil {
		return err
	}
	var opts []clientv3.OpOption
	if r.c.TTL > 0 {
		if r.lease == 0 {
			l, err := r.cli.Grant(ctx, r.ttl())
			if err != nil {
				return fmt.Errorf("etcd: grant lease: %w", err)
			}
			r.lease = l.ID
		}
		opts = append(opts, clientv3.WithLease(r.lease))
	}
	key := r.c.key(s)
	if _, err := r.cli.Put(ctx, key, string(val), opts...); err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			r.lease = 0
			return fmt.Errorf("etcd: put %s: %w: %w", key, errGone, err)
		}
		return fmt.Errorf("etcd: put %s: %w", key, err)
	}
	return nil
}

func (r *etcdRegistry) Deregister(ctx context.Context, s *Service) error {
	key := r.c.key(s)
	if _, err := r.cli.Delete(ctx, key); err != nil {
		return fmt.Errorf("etcd: delete %s: %w", key, err)
	}
	return nil
}

func (r *etcdRegistry) Refresh(ctx context.Context, ss []*Service) error {
	if r.c.TTL <= 0 || r.lease == 0 {
		return nil
	}
	if _, err := r.cli.KeepAliveOnce(ctx, r.lease); err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			r.lease = 0
			return fmt.Errorf("etcd: keep-alive: %w: %w", errGone, err)
		}
		return fmt.Errorf("etcd: keep-alive: %w", err)
	}
	return nil
}

// Abandon moves the key to a lease of its own that nobody keeps alive.
func (r *etcdRegistry) Abandon(ctx context.Context, s *Service) error {
	if r.c.TTL <= 0 {
		return nil
	}
	val, err := r.c.encode(s)
	if err != nil {
		return err
	}
	l, err := r.cli.Grant(ctx, r.ttl())
	if err != nil {
		return fmt.Errorf("etcd: grant lease: %w", err)
	}
	if _, err := r.cli.Put(ctx, r.c.key(s), string(val), clientv3.WithLease(l.ID)); err != nil {
		return fmt.Errorf("etcd: put %s: %w", r.c.key(s), err)
	}
	return nil
}

func (r *etcdRegistry) Services(ctx context.Context) ([]backends.Service, error) {
	prefix := r.c.prefix()
	p := prefix
	if p != "/" {
		p += "/"
	}
	resp, err := r.cli.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd: get %s: %w", p, err)
	}
	var out []backends.Service
	for _, kv := range resp.Kvs {
		name, id, ok := parseKey(prefix, string(kv.Key))
		if !ok {
			continue
		}
		s, err := discovery.Decode(name, id, string(kv.Value))
		if err != nil {
			s = backends.Service{ID: id, Name: name}
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *etcdRegistry) Close() error { return r.cli.Close() }
