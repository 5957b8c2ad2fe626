package registrator

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/reconf/reconf/backends"
)

// redisRegistry writes the key convention as plain Redis keys, with an expiry of -ttl that
// -ttl-refresh pushes back (no expiry without -ttl).
type redisRegistry struct {
	cli *redis.Client
	c   registryConfig
}

var _ Registry = (*redisRegistry)(nil)

func newRedis(c registryConfig) (*redisRegistry, error) {
	host := c.URI.Host
	if host == "" {
		host = "127.0.0.1:6379"
	}
	o := &redis.Options{Addr: host, DialTimeout: c.Timeout, ReadTimeout: c.Timeout, WriteTimeout: c.Timeout}
	if u := c.URI.User; u != nil { // redis://[user]:password@host:port/path
		o.Username = u.Username()
		o.Password, _ = u.Password()
	}
	return &redisRegistry{cli: redis.NewClient(o), c: c}, nil
}

func (r *redisRegistry) Ping(ctx context.Context) error {
	if err := r.cli.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

func (r *redisRegistry) Register(ctx context.Context, s *Service) error {
	val, err := r.c.encode(s)
	if err != nil {
		return err
	}
	if err := r.cli.Set(ctx, r.c.key(s), val, r.c.TTL).Err(); err != nil {
		return fmt.Errorf("redis: set %s: %w", r.c.key(s), err)
	}
	return nil
}

func (r *redisRegistry) Deregister(ctx context.Context, s *Service) error {
	if err := r.cli.Del(ctx, r.c.key(s)).Err(); err != nil {
		return fmt.Errorf("redis: del %s: %w", r.c.key(s), err)
	}
	return nil
}

func (r *redisRegistry) Refresh(ctx context.Context, ss []*Service) error {
	if r.c.TTL <= 0 || len(ss) == 0 {
		return nil
	}
	cmds := make([]*redis.BoolCmd, len(ss))
	_, err := r.cli.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range ss {
			cmds[i] = p.PExpire(ctx, r.c.key(s), r.c.TTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: expire: %w", err)
	}
	for i, c := range cmds {
		if !c.Val() {
			return fmt.Errorf("redis: %s: %w", r.c.key(ss[i]), errGone)
		}
	}
	return nil
}

func (r *redisRegistry) Abandon(context.Context, *Service) error { return nil }

func (r *redisRegistry) Services(ctx context.Context) ([]backends.Service, error) {
	prefix := r.c.prefix()
	pattern := prefix + "/*"
	if prefix == "/" {
		pattern = "/*"
	}
	var out []backends.Service
	it := r.cli.Scan(ctx, 0, pattern, 500).Iterator()
	for it.Next(ctx) {
		name, id, ok := parseKey(prefix, it.Val())
		if !ok {
			continue
		}
		out = append(out, backends.Service{ID: id, Name: name})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("redis: scan %s: %w", pattern, err)
	}
	return out, nil
}

func (r *redisRegistry) Close() error { return r.cli.Close() }
