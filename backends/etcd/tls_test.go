package etcd

import (
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

// TestTLS runs against one etcd that requires client certificates: mutual TLS works, CA-only
// (no client certificate) is refused, and so is a client that does not trust the server.
func TestTLS(t *testing.T) {
	p := testservers.NewPKI(t)
	srv := testservers.EtcdWithTLS(t, testservers.EtcdTLS{
		CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientCAFile: p.CA,
		ProbeCert: p.ClientCert, ProbeKey: p.ClientKey,
	})
	opts := backends.Options{
		Nodes: []string{srv.Addr}, ClientCAKeys: p.CA, ClientCert: p.ClientCert, ClientKey: p.ClientKey,
		DialTimeout: 2 * time.Second, RequestTimeout: 3 * time.Second,
	}
	b, err := backends.New("etcd", opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer b.Close()
	if _, err := b.Get(ctxT(t), []string{"/tls"}); err != nil {
		t.Fatalf("Get over mutual TLS: %v", err)
	}

	caOnly := opts
	caOnly.ClientCert, caOnly.ClientKey = "", ""
	if err := getErr(t, caOnly); err == nil {
		t.Error("Get without a client certificate succeeded against a server that requires one")
	}
	untrusted := opts
	untrusted.ClientCAKeys = testservers.NewPKI(t).CA
	if err := getErr(t, untrusted); err == nil {
		t.Error("Get succeeded with a CA that did not sign the server's certificate")
	}
}

// TestTLSCAOnly: a server without client-certificate auth is read with the CA alone.
func TestTLSCAOnly(t *testing.T) {
	p := testservers.NewPKI(t)
	srv := testservers.EtcdWithTLS(t, testservers.EtcdTLS{CertFile: p.ServerCert, KeyFile: p.ServerKey})
	opts := backends.Options{Nodes: []string{srv.Addr}, ClientCAKeys: p.CA, RequestTimeout: 3 * time.Second}
	if err := getErr(t, opts); err != nil {
		t.Fatalf("Get over server-verified TLS: %v", err)
	}
}

func getErr(t *testing.T, o backends.Options) error {
	t.Helper()
	b, err := backends.New("etcd", o)
	if err != nil {
		return err
	}
	defer b.Close()
	_, err = b.Get(ctxT(t), []string{"/tls"})
	return err
}
