package redis

import (
	"testing"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

// TestTLS reads from a Redis that requires client certificates: mutual TLS works; no client
// certificate, or a CA that did not sign the server, is refused.
func TestTLS(t *testing.T) {
	p := testservers.NewPKI(t)
	srv := testservers.RedisWithTLS(t, testservers.RedisTLS{
		CertFile: p.ServerCert, KeyFile: p.ServerKey, CAFile: p.CA, RequireClientCert: true,
		ProbeCert: p.ClientCert, ProbeKey: p.ClientKey,
	})
	opts := backends.Options{Nodes: []string{srv.Addr}, ClientCAKeys: p.CA, ClientCert: p.ClientCert, ClientKey: p.ClientKey}
	b, err := backends.New("redis", opts)
	must(t, err)
	defer b.Close()
	if _, err := b.Get(ctxT(t), []string{"/tls"}); err != nil {
		t.Fatalf("Get over mutual TLS: %v", err)
	}
	changed := make(chan struct{}, 1)
	stop := startWatch(t, b.(backends.Watcher), []string{"/tls"}, changed)
	defer stop()
	waitSignal(t, changed, "subscribing over TLS")

	for name, o := range map[string]backends.Options{
		"no client certificate": {Nodes: []string{srv.Addr}, ClientCAKeys: p.CA},
		"untrusted server":      {Nodes: []string{srv.Addr}, ClientCAKeys: testservers.NewPKI(t).CA, ClientCert: p.ClientCert, ClientKey: p.ClientKey},
	} {
		b, err := backends.New("redis", o)
		must(t, err)
		if _, err := b.Get(ctxT(t), []string{"/tls"}); err == nil {
			t.Errorf("%s: Get succeeded", name)
		}
		b.Close()
	}
}
