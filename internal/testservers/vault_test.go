package testservers

import (
	"context"
	"testing"
	"time"
)

// TestVault starts dev Vault over HTTP and HTTPS, checks it is healthy with the fixed root token
// and an unseal key in its log, and starts the plain one again after a stop.
func TestVault(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		v := vault(t, withTLS)
		if v.Token != VaultRootToken {
			t.Fatalf("Token %q", v.Token)
		}
		if withTLS != (v.CAFile != "") {
			t.Fatalf("tls %v: CAFile %q", withTLS, v.CAFile)
		}
		if k := v.UnsealKey(t); len(k) < 20 {
			t.Fatalf("unseal key %q", k)
		}
		if !withTLS {
			v.Stop(t)
			if dials(v.Addr) {
				t.Fatalf("%s still accepts connections after Stop", v.Addr)
			}
			v.Start(t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := vaultHealthy(ctx, v.URL())
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", v.URL(), err)
		}
		v.Stop(t)
	}
}
