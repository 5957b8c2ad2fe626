package vault

import (
	"context"
	"fmt"
	"testing"

	"github.com/reconf/reconf/internal/testservers"
)

// BenchmarkPoll1000 is the cost of one poll (one Get) of 1,000 secrets in one folder of a KV
// version 2 mount: a mount lookup, one LIST and 1,000 reads, DefaultConcurrency at a time.
func BenchmarkPoll1000(b *testing.B) {
	srv := testservers.Vault(b)
	rc := srv.RootClient(b)
	ctx := context.Background()
	for i := range 1000 {
		if _, err := rc.KVv2("secret").Put(ctx, fmt.Sprintf("bench/k%04d", i), map[string]any{"value": fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
	c, err := New(Config{Address: srv.URL(), AuthType: AuthToken, Token: srv.Token})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for b.Loop() {
		kv, err := c.Get(ctx, []string{"/secret/bench"})
		if err != nil || len(kv) != 1000 {
			b.Fatalf("Get: %d keys, %v", len(kv), err)
		}
	}
}
