package redis

import (
	"context"
	"fmt"
	"testing"

	"github.com/reconf/reconf/internal/testservers"
)

// BenchmarkGet reads 100,000 keys under one prefix, and 50 prefixes × 1,000 keys, from one
// database that holds both sets (150,000 keys).
func BenchmarkGet(b *testing.B) {
	srv := testservers.Redis(b)
	rc := raw(b, srv, 0)
	ctx := context.Background()
	fill := func(n int, name func(i int) string) {
		for start := 0; start < n; start += 1000 {
			pipe := rc.Pipeline()
			for i := start; i < min(start+1000, n); i++ {
				pipe.Set(ctx, name(i), fmt.Sprintf("value-%d", i), 0)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill(100_000, func(i int) string { return fmt.Sprintf("/big/k%06d", i) })
	fill(50_000, func(i int) string { return fmt.Sprintf("/multi/p%02d/k%04d", i/1000, i%1000) })
	var many []string
	for p := range 50 {
		many = append(many, fmt.Sprintf("/multi/p%02d", p))
	}
	c := testConfig(srv, 0)
	c.RequestTimeout = 0 // default: these reads are big
	cl := newClient(b, c)
	for _, bc := range []struct {
		name     string
		prefixes []string
		want     int
	}{
		{"100000keys-1prefix", []string{"/big"}, 100_000},
		{"50prefixes-1000keys", many, 50_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				kv, err := cl.Get(ctx, bc.prefixes)
				if err != nil {
					b.Fatal(err)
				}
				if len(kv) != bc.want {
					b.Fatalf("got %d keys, want %d", len(kv), bc.want)
				}
			}
		})
	}
}
