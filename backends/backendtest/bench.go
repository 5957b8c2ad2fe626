package backendtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/reconf/reconf/backends"
)

// The data every backend's read benchmark loads: BenchGroups folders of BenchPerGroup keys,
// named by BenchKey, 100,000 keys in all.
const (
	BenchGroups   = 100
	BenchPerGroup = 1000
)

// BenchKey names key k of group g: /bench/gNN/kNNNN.
func BenchKey(g, k int) string { return fmt.Sprintf("/bench/g%02d/k%04d", g, k) }

// BenchValue is the value BenchKey(g, k) holds.
func BenchValue(g, k int) string { return fmt.Sprintf("value %d/%d", g, k) }

// BenchGet runs the read benchmarks every backend reports, on data the caller loaded with
// BenchKey and BenchValue: all 100,000 keys under one prefix, and 50 folders of 1,000 keys in
// one Get, both through be (the caller closes it).
func BenchGet(b *testing.B, be backends.Backend) {
	fifty := make([]string, 50)
	for i := range fifty {
		fifty[i] = fmt.Sprintf("/bench/g%02d", i)
	}
	for _, bc := range []struct {
		name     string
		prefixes []string
		keys     int
	}{{"100000keys", []string{"/bench"}, BenchGroups * BenchPerGroup}, {"50x1000keys", fifty, 50 * BenchPerGroup}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				kv, err := be.Get(context.Background(), bc.prefixes)
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
