package testservers

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/reconf/reconf/internal/testutil"
)

// VaultRootToken is the root token of every dev Vault started here (-dev-root-token-id).
const VaultRootToken = "reconf-test-root"

// VaultBinary returns the Vault binary the tests use: $RECONF_VAULT, else the one
// scripts/build-vault.sh caches (under $RECONF_CACHE, $XDG_CACHE_HOME/reconf or ~/.cache/reconf).
func VaultBinary() string {
	if b := os.Getenv("RECONF_VAULT"); b != "" {
		return b
	}
	return filepath.Join(reconfCache(), "vault-1.21.4", "vault")
}

// VaultServer is a dev-mode Vault: in-memory storage (a restarted Vault is empty again, with the
// same root token), unsealed at start, `secret/` mounted as KV version 2.
type VaultServer struct {
	*Server
	Token string // the root token (VaultRootToken)
	// CAFile is the CA certificate that signed the server's certificate (VaultTLS only;
	// rewritten at each start, since dev TLS makes a new CA every time).
	CAFile string
	tls    bool
}

// URL is the address clients use: http://127.0.0.1:P, or https:// for VaultTLS.
func (v *VaultServer) URL() string {
	if v.tls {
		return "https://" + v.Addr
	}
	return "http://" + v.Addr
}

// RootClient is a vault/api client with the root token (no retries, trusting CAFile), to set
// Vault up the way an operator would. Its idle connections close when the test ends.
func (v *VaultServer) RootClient(t testing.TB) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = v.URL()
	cfg.MaxRetries = 0
	if v.CAFile != "" {
		if err := cfg.ConfigureTLS(&vaultapi.TLSConfig{CACert: v.CAFile}); err != nil {
			t.Fatalf("testservers: vault: %v", err)
		}
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatalf("testservers: vault: %v", err)
	}
	c.SetToken(v.Token)
	t.Cleanup(func() { cfg.HttpClient.CloseIdleConnections() })
	return c
}

var unsealKeyRE = regexp.MustCompile(`Unseal Key: (\S+)`)

// UnsealKey returns the unseal key the last start printed (dev mode has one key share), for
// tests that seal and unseal Vault. Vault prints it just after it starts serving: UnsealKey
// waits up to 10 s for it.
func (v *VaultServer) UnsealKey(t testing.TB) string {
	t.Helper()
	var key string
	testutil.Until(t, 10*time.Second, 50*time.Millisecond, func() error {
		b, err := os.ReadFile(v.LogPath())
		if err != nil {
			t.Fatalf("testservers: vault: %v", err)
		}
		// The key of the last start: after the last "===" line the launcher writes.
		if i := bytes.LastIndex(b, []byte("\n=== ")); i >= 0 {
			b = b[i:]
		}
		m := unsealKeyRE.FindSubmatch(b)
		if m == nil {
			return fmt.Errorf("testservers: vault: no unseal key in %s after 10s", v.LogPath())
		}
		key = string(m[1])
		return nil
	})
	return key
}

// Vault starts `vault server -dev` (binary from scripts/build-vault.sh, or $RECONF_VAULT) on a
// loopback port with plain HTTP and waits until /v1/sys/health says it is active and unsealed.
func Vault(t testing.TB) *VaultServer {
	t.Helper()
	return vault(t, false)
}

// VaultTLS is Vault serving HTTPS with a fresh dev CA (CAFile). Vault asks clients for a
// certificate without requiring one, as the cert auth method needs.
func VaultTLS(t testing.TB) *VaultServer {
	t.Helper()
	return vault(t, true)
}

func vault(t testing.TB, withTLS bool) *VaultServer {
	t.Helper()
	bin := VaultBinary()
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("testservers: vault binary %s missing (build it with scripts/build-vault.sh, or set RECONF_VAULT): %v", bin, err)
	}
	v := &VaultServer{Token: VaultRootToken, tls: withTLS}
	scheme := "http"
	if withTLS {
		scheme = "https"
	}
	v.Server = launch(t, spec{
		name:   "vault",
		binary: bin,
		roles:  []string{"http"},
		setup: func(dir string, _ map[string]int) error {
			return os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
		},
		args: func(dir string, p map[string]int) []string {
			args := []string{
				"server", "-dev", "-dev-root-token-id=" + VaultRootToken,
				"-dev-listen-address=127.0.0.1:" + strconv.Itoa(p["http"]),
				"-log-level=info",
			}
			if withTLS {
				args = append(args, "-dev-tls", "-dev-tls-cert-dir="+filepath.Join(dir, "tls"))
			}
			return args
		},
		ready: func(ctx context.Context, s *Server) error {
			return vaultHealthy(ctx, scheme+"://"+s.Addr)
		},
		// VAULT_ADDR and friends from the caller's environment must not reach the server.
		env:     []string{"VAULT_ADDR=", "VAULT_TOKEN=", "VAULT_CACERT="},
		timeout: 60 * time.Second,
	})
	if withTLS {
		v.CAFile = filepath.Join(v.Dir, "tls", "vault-ca.pem")
	}
	return v
}

// vaultHealthy asks /v1/sys/health, which answers 200 only when Vault is initialised, unsealed
// and active. The probe does not verify the dev certificate: it only asks whether Vault serves.
func vaultHealthy(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/sys/health", nil)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness probe only
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sys/health: %s: %s", resp.Status, b)
	}
	return nil
}
