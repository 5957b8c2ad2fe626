package consul

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconf/reconf/backends"
)

// A fake agent over TLS that wants basic auth and a token checks how the client is wired:
// CA file, insecure mode, credentials and token headers.
func TestTLSAndCredentials(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "u" || pass != "secret-password" || r.Header.Get("X-Consul-Token") != "secret-token" {
			http.Error(w, "Permission denied", http.StatusForbidden)
			return
		}
		w.Header().Set("X-Consul-Index", "5")
		_, _ = w.Write([]byte(`[{"Key":"app/k","Value":"dmFsdWU=","ModifyIndex":5}]`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := srv.Listener.Addr().String()
	get := func(cfg Config) (map[string]string, error) {
		cfg.Logger = quiet
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.Get(context.Background(), []string{"/app"})
	}
	good := Config{Address: addr, Scheme: "https", CAFile: ca, BasicAuth: true, Username: "u", Password: "secret-password", Token: "secret-token"}
	if kv, err := get(good); err != nil || kv["/app/k"] != "value" {
		t.Errorf("Get over TLS with the CA = %q, %v", kv, err)
	}
	insecure := good
	insecure.CAFile, insecure.Insecure = "", true
	if kv, err := get(insecure); err != nil || kv["/app/k"] != "value" {
		t.Errorf("Get over TLS, insecure = %q, %v", kv, err)
	}
	scheme := good
	scheme.Scheme, scheme.Address = "", "https://"+addr
	if kv, err := get(scheme); err != nil || kv["/app/k"] != "value" {
		t.Errorf("Get with https:// in the node = %q, %v", kv, err)
	}
	noCA := good
	noCA.CAFile = ""
	if _, err := get(noCA); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get over TLS without the CA: %v, want backends.ErrUnavailable", err)
	}
	wrong := good
	wrong.Password = "wrong-password"
	_, err := get(wrong)
	if !errors.Is(err, backends.ErrAuth) {
		t.Errorf("Get with a wrong password: %v, want backends.ErrAuth", err)
	}
	for _, secret := range []string{"wrong-password", "secret-token"} {
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}
