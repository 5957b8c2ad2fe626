package register

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/discovery"
	"github.com/redis/go-redis/v9"
)

// redisStore keeps the instance as a key with an expiry of TTL, pushed back each interval.
type redisStore struct {
	cli *redis.Client
	key string
	val []byte
	ttl time.Duration
}

var _ store = (*redisStore)(nil)

// redisOptions reads a node as confd does: "host:port", "host:port/db", or a unix socket path.
func redisOptions(node string, o backends.Options) (*redis.Options, error) {
	ro := &redis.Options{Network: "tcp", Addr: node, DialTimeout: o.Dial(), ReadTimeout: o.Request(), WriteTimeout: o.Request()}
	if strings.HasPrefix(node, "/") {
		ro.Network = "unix"
	} else if host, db, ok := strings.Cut(node, "/"); ok {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: redis node %q: bad db number", backends.ErrConfig, node)
		}
		ro.Addr, ro.DB = host, n
	}
	ro.Username = o.Username
	ro.Password = o.Password
	if ro.Password == "" {
		ro.Password = o.ClientKey // confd's spelling of the redis password
	}
	return ro, nil
}

// redisKey maps a '/'-separated key to the store's, as the redis backend reads it.
func redisKey(key, sep string) string {
	if sep == "" || sep == "/" {
		return key
	}
	return strings.ReplaceAll(strings.TrimPrefix(key, "/"), "/", sep)
}

func newRedis(c Config) (*redisStore, error) {
	o := c.Options
	nodes := nodesOr(o.Nodes, "127.0.0.1:6379")
	var cli *redis.Client
	for i, n := range nodes { // the first node that answers, as confd does; else the last
		ro, err := redisOptions(n, o)
		if err != nil {
			return nil, err
		}
		cand := redis.NewClient(ro)
		ctx, cancel := context.WithTimeout(context.Background(), o.Dial())
		err = cand.Ping(ctx).Err()
		cancel()
		if err == nil || i == len(nodes)-1 {
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
