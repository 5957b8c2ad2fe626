package etcd

import (
	"context"
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/internal/testservers"
)

// BenchmarkGet reads 100,000 keys under one prefix, and 50 prefixes × 1,000 keys, from one
// store that holds both sets (150,000 keys).
func BenchmarkGet(b *testing.B) {
	srv := testservers.Etcd(b)
	cli := raw(b, "http://"+srv.Addr)
	ctx := context.Background()
	fill := func(n int, name func(i int) string) {
		for start := 0; start < n; start += 100 {
			var ops []clientv3.Op
			for i := start; i < min(start+100, n); i++ {
				ops = append(ops, clientv3.OpPut(name(i), fmt.Sprintf("value-%d", i)))
			}
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
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
	c := testConfig(srv)
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
