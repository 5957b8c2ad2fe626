package register

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reconf/reconf/backends"
	redisbackend "github.com/reconf/reconf/backends/redis"
	"github.com/reconf/reconf/discovery"
)

// redisStore keeps the instance as a key with an expiry of TTL, pushed back each interval.
type redisStore struct {
	cli *redis.Client
	key string
	val []byte
	ttl time.Duration
}

var _ store = (*redisStore)(nil)

// redisKey maps a '/'-separated key to the store's, as the redis backend reads it.
func redisKey(key, sep string) string {
	if sep == "" || sep == "/" {
		return key
	}
	return strings.ReplaceAll(strings.TrimPrefix(key, "/"), "/", sep)
}

// redisOptions reads nodes, credentials and TLS as the redis backend does (confd's
// host:port[/db], socket paths, redis:// URLs; -client-key is the password unless
// -client-cert is set), one client option set per node.
func redisOptions(o backends.Options) ([]*redis.Options, error) {
	rc, err := redisbackend.FromOptions(o)
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if rc.TLS {
		to := o
		if to.ClientCert == "" {
			to.ClientKey = "" // the password, not a key file
		}
		if tlsCfg, err = tlsConfig(to); err != nil {
			return nil, err
		}
		if tlsCfg == nil {
			tlsCfg = &tls.Config{}
		}
		tlsCfg.MinVersion = tls.VersionTLS12
	}
	out := make([]*redis.Options, 0, len(rc.Nodes))
	for _, n := range rc.Nodes {
		out = append(out, &redis.Options{
			Network: n.Network, Addr: n.Addr, DB: n.DB, Username: rc.Username, Password: rc.Password,
			TLSConfig: tlsCfg, DialTimeout: o.Dial(), ReadTimeout: o.Request(), WriteTimeout: o.Request(),
		})
	}
	return out, nil
}

func newRedis(c Config) (*redisStore, error) {
	o := c.Options
	opts, err := redisOptions(o)
	if err != nil {
		return nil, err
	}
	var cli *redis.Client
	for i, ro := range opts { // the first node that answers, as confd does; else the last
		cand := redis.NewClient(ro)
		ctx, cancel := context.WithTimeout(context.Background(), o.Dial())
		err := cand.Ping(ctx).Err()
		cancel()
		if err == nil || i == len(opts)-1 {
			cli = cand
			break
		}
		cand.Close()
	}
	val, err := discovery.Encode(c.Instance)
	if err != nil {
		cli.Close()
		return nil, err
	}
	key := redisKey(discovery.Key(o.ServicesPrefix, c.Instance.Name, c.Instance.ID), o.Separator)
	return &redisStore{cli: cli, key: key, val: val, ttl: c.TTL}, nil
}

func (r *redisStore) Register(ctx context.Context) error {
	if err := r.cli.Set(ctx, r.key, r.val, r.ttl).Err(); err != nil {
		return fmt.Errorf("redis: set %s: %w", r.key, err)
	}
	return nil
}

func (r *redisStore) Refresh(ctx context.Context) error {
	ok, err := r.cli.PExpire(ctx, r.key, r.ttl).Result()
	if err != nil {
		return fmt.Errorf("redis: expire %s: %w", r.key, err)
	}
	if !ok {
		return fmt.Errorf("redis: %s: %w", r.key, errGone)
	}
	return nil
}

func (r *redisStore) Down(ctx context.Context) error { return r.Deregister(ctx) }

func (r *redisStore) Deregister(ctx context.Context) error {
	if err := r.cli.Del(ctx, r.key).Err(); err != nil {
		return fmt.Errorf("redis: del %s: %w", r.key, err)
	}
	return nil
}

func (r *redisStore) Close() error { return r.cli.Close() }
