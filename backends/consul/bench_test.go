package consul

import (
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
)

// load writes backendtest's benchmark data, 64 sets per transaction.
func load(b *testing.B, st *api.Client) {
	b.Helper()
	var ops api.TxnOps
	flush := func() {
		ok, resp, _, err := st.Txn().Txn(ops, nil)
		if err != nil || !ok {
			b.Fatalf("txn: %v %v", err, resp)
		}
		ops = ops[:0]
	}
	for g := range backendtest.BenchGroups {
		for k := range backendtest.BenchPerGroup {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet,
				Key: consulKey(backendtest.BenchKey(g, k)), Value: []byte(backendtest.BenchValue(g, k))}})
			if len(ops) == 64 {
				flush()
			}
		}
	}
	if len(ops) > 0 {
		flush()
	}
}

// BenchmarkGet runs backendtest.BenchGet: 100,000 keys under one prefix, and 50 prefixes ×
// 1,000 keys in one Get.
func BenchmarkGet(b *testing.B) {
	srv := testservers.Consul(b)
	load(b, storeClient(b, srv.Addr))
	c := newClient(b, srv.Addr)
	defer c.Close()
	backendtest.BenchGet(b, c)
}
