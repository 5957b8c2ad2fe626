package consul

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/internal/testservers"
)

// load writes bench/gNN/kNNNN: groups × perGroup keys, 64 sets per transaction.
func load(b *testing.B, st *api.Client, groups, perGroup int) {
	b.Helper()
	var ops api.TxnOps
	flush := func() {
		ok, resp, _, err := st.Txn().Txn(ops, nil)
		if err != nil || !ok {
			b.Fatalf("txn: %v %v", err, resp)
		}
		ops = ops[:0]
	}
	for g := range groups {
		for k := range perGroup {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet,
				Key: fmt.Sprintf("bench/g%02d/k%04d", g, k), Value: fmt.Appendf(nil, "value %d/%d", g, k)}})
			if len(ops) == 64 {
				flush()
			}
		}
	}
	if len(ops) > 0 {
		flush()
	}
}

// BenchmarkGet reads 100,000 keys under one prefix, and 50 prefixes of 1,000 keys each in one
// Get.
func BenchmarkGet(b *testing.B) {
	srv := testservers.Consul(b)
	st := storeClient(b, srv.Addr)
	load(b, st, 100, 1000)
	fifty := make([]string, 50)
	for i := range fifty {
		fifty[i] = fmt.Sprintf("/bench/g%02d", i)
	}
	for _, bc := range []struct {
		name     string
		prefixes []string
		keys     int
	}{{"100000keys", []string{"/bench"}, 100000}, {"50x1000keys", fifty, 50000}} {
		b.Run(bc.name, func(b *testing.B) {
			c := newClient(b, srv.Addr)
			defer c.Close()
			for b.Loop() {
				kv, err := c.Get(context.Background(), bc.prefixes)
				if err != nil {
					b.Fatal(err)
				}
				if len(kv) != bc.keys {
					b.Fatalf("got %d keys, want %d", len(kv), bc.keys)
				}
			}
		})
	}
}
