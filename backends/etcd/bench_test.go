package etcd

import (
	"context"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
)

// BenchmarkGet runs backendtest.BenchGet: 100,000 keys under one prefix, and 50 prefixes ×
// 1,000 keys, loaded 100 puts per transaction.
func BenchmarkGet(b *testing.B) {
	srv := testservers.Etcd(b)
	cli := raw(b, "http://"+srv.Addr)
	ctx := context.Background()
	for g := range backendtest.BenchGroups {
		for start := 0; start < backendtest.BenchPerGroup; start += 100 {
			var ops []clientv3.Op
			for k := start; k < min(start+100, backendtest.BenchPerGroup); k++ {
				ops = append(ops, clientv3.OpPut(backendtest.BenchKey(g, k), backendtest.BenchValue(g, k)))
			}
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	c := testConfig(srv)
	c.RequestTimeout = 0 // default: these reads are big
	backendtest.BenchGet(b, newClient(b, c))
}
