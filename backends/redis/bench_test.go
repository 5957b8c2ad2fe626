package redis

import (
	"context"
	"testing"

	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
)

// BenchmarkGet runs backendtest.BenchGet: 100,000 keys under one prefix, and 50 prefixes ×
// 1,000 keys, loaded in pipelines of 1,000 SETs.
func BenchmarkGet(b *testing.B) {
	srv := testservers.Redis(b)
	rc := raw(b, srv, 0)
	ctx := context.Background()
	for g := range backendtest.BenchGroups {
		pipe := rc.Pipeline()
		for k := range backendtest.BenchPerGroup {
			pipe.Set(ctx, backendtest.BenchKey(g, k), backendtest.BenchValue(g, k), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	c := testConfig(srv, 0)
	c.RequestTimeout = 0 // default: these reads are big
	backendtest.BenchGet(b, newClient(b, c))
}
