package etcd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a client certificate, as
// PEM files in a temporary folder.
type pki struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey := genKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reconf test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := pki{CA: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.CA, "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key := genKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		cf, kf := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, cf, "CERTIFICATE", der)
		writePEM(t, kf, "EC PRIVATE KEY", kb)
		return cf, kf
	}
	p.ServerCert, p.ServerKey = issue("server", 2, x509.ExtKeyUsageServerAuth)
	p.ClientCert, p.ClientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func genKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS runs against one etcd that requires client certificates: mutual TLS works, CA-only
// (no client certificate) is refused, and so is a client that does not trust the server.
func TestTLS(t *testing.T) {
	p := newPKI(t)
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
	untrusted.ClientCAKeys = newPKI(t).CA
	if err := getErr(t, untrusted); err == nil {
		t.Error("Get succeeded with a CA that did not sign the server's certificate")
	}
}

// TestTLSCAOnly: a server without client-certificate auth is read with the CA alone.
func TestTLSCAOnly(t *testing.T) {
	p := newPKI(t)
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
