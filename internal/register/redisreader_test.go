package register

import (
	"context"
	"testing"

	"github.com/reconf/reconf/backends"
	"github.com/redis/go-redis/v9"
)

// redisReader is a minimal read-only backend over Redis for discovery in these tests.
type redisReader struct{ cli *redis.Client }

func newRedisReader(t *testing.T, addr string) backends.Backend {
	return &redisReader{cli: redis.NewClient(&redis.Options{Addr: addr})}
}

func (r *redisReader) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range backends.Dedupe(prefixes) {
		keys, err := r.cli.Keys(ctx, p+"*").Result()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if !backends.UnderPrefix(k, p) {
				continue
			}
			v, err := r.cli.Get(ctx, k).Result()
			if err == redis.Nil {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
	}
	return out, nil
}

func (r *redisReader) Close() error { return r.cli.Close() }
