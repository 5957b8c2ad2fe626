package consul

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

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

// BenchmarkChangeToGet measures the backend's part of change→file latency: from issuing a put
// (its round trip included) to a Get that shows it, through the watch's signal
// (change-to-get-ns/op; ns/op also holds a 2ms pause per change). With the watch-fed mirror
// the Get after the signal costs no round trip (get-ns/op: about 10µs, against about 400µs
// for a list from a local agent).
func BenchmarkChangeToGet(b *testing.B) {
	srv := testservers.Consul(b)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	st, err := api.NewClient(&api.Config{Address: srv.Addr, Transport: tr})
	if err != nil {
		b.Fatal(err)
	}
	// Isolated changes: the watch's rate limit (MinGap) would otherwise set the pace.
	c, err := New(Config{Address: srv.Addr, Logger: quiet, WaitTime: 10 * time.Second, MinGap: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	put(b, st, "bench-lat/k", "init")
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, []string{"/bench-lat"}, changed) }()
	defer func() { cancel(); <-done }()
	<-changed
	var gets, puts, sigs, totals time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		// Isolated changes: let the watch's next blocking query reach the agent first.
		time.Sleep(2 * time.Millisecond)
		v := strconv.Itoa(i)
		t0 := time.Now()
		if _, err := st.KV().Put(&api.KVPair{Key: "bench-lat/k", Value: []byte(v)}, nil); err != nil {
			b.Fatal(err)
		}
		puts += time.Since(t0)
		for {
			<-changed
			start := time.Now()
			sigs += start.Sub(t0)
			kv, err := c.Get(context.Background(), []string{"/bench-lat"})
			gets += time.Since(start)
			n++
			if err != nil {
				b.Fatal(err)
			}
			if kv["/bench-lat/k"] == v {
				break
			}
		}
		totals += time.Since(t0)
	}
	b.ReportMetric(float64(totals.Nanoseconds())/float64(b.N), "change-to-get-ns/op")
	b.ReportMetric(float64(gets.Nanoseconds())/float64(n), "get-ns/op")
	b.ReportMetric(float64(puts.Nanoseconds())/float64(b.N), "put-ns/op")
	b.ReportMetric(float64(sigs.Nanoseconds())/float64(n), "signal-ns/op")
}

// BenchmarkShareFeed is what one answer of a shared folder query costs reconf (share.go) with
// 50 watched prefixes under the folder, 1 or 10 keys each: decoding the body, judging its
// cost and cutting it into each prefix's part with its fingerprint. Every change under the
// folder pays it once, before the signal.
func BenchmarkShareFeed(b *testing.B) {
	for _, per := range []int{1, 10} {
		b.Run(strconv.Itoa(50*per)+"keys", func(b *testing.B) {
			g := &group{}
			body := []byte("[")
			for i := range 50 {
				p := "many/p" + strconv.Itoa(100 + i)[1:]
				g.members = append(g.members, &member{w: &kvWatch{prefix: "/" + p}})
				for j := range per {
					if len(body) > 1 {
						body = append(body, ',')
					}
					body = append(body, `{"LockIndex":0,"Key":"`+p+`/k`+strconv.Itoa(j)+`","Flags":0,"Value":"dmFsdWUtMDAwMDAwMDA=","CreateIndex":12,"ModifyIndex":3456}`...)
				}
			}
			body = append(body, ']')
			for b.Loop() {
				var es []entry
				n := 0
				err := decodeKVs(bytes.NewReader(body), func(k, v []byte) {
					n++
					es = append(es, entry{key: "/" + string(k), value: string(v)})
				})
				if err != nil {
					b.Fatal(err)
				}
				d := newKVData(es)
				if why := g.cost(listed{raw: n}, d); why != "" {
					b.Fatal(why)
				}
				for _, m := range g.members {
					_ = d.sub(m.w.prefix)
				}
			}
		})
	}
}
