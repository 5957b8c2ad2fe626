package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testservers"
)

// vaultPut writes a KV version 2 secret at secret/<path> of the dev Vault.
func vaultPut(t *testing.T, srv *testservers.VaultServer, path string, data map[string]string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"data": data})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL()+"/v1/secret/data/"+path, bytes.NewReader(body))
	must(t, err)
	req.Header.Set("X-Vault-Token", srv.Token)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("vault put %s: %s", path, resp.Status)
	}
}

// The case: KV from etcd (the global backend), secrets from Vault (a named one), one
// resource each, in -onetime, -noop and -watch. The Vault resource is written 0600, its -noop
// diff hides the values, Vault is polled at -interval, and no secret or token is logged.
func TestNamedVaultStoreEndToEnd(t *testing.T) {
	etcd := testservers.Etcd(t)
	vault := testservers.Vault(t)
	put := etcdPutter(t, etcd.Addr)
	put("/app/host", "db-1.example")
	vaultPut(t, vault, "app/db", map[string]string{"password": "pw-VAULT-1"})
	secrets := []string{vault.Token, "pw-VAULT-1", "pw-VAULT-2"}

	tmp := t.TempDir()
	dir := filepath.Join(tmp, "etc")
	kvDest, secDest := filepath.Join(tmp, "app.conf"), filepath.Join(tmp, "secret.conf")
	for name, body := range map[string]string{
		"templates/app.tmpl":    `host={{getv "/app/host"}}` + "\n",
		"templates/secret.tmpl": "# db\npassword={{getv \"/secret/app/db/password\"}}\n# end\n",
		"conf.d/app.toml":       fmt.Sprintf("[template]\nsrc = \"app.tmpl\"\ndest = %q\nkeys = [\"/app\"]\n", kvDest),
		"conf.d/secret.toml":    fmt.Sprintf("[template]\nsrc = \"secret.tmpl\"\ndest = %q\nkeys = [\"/secret/app\"]\nbackend = \"secrets\"\n", secDest),
	} {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(body), 0o644))
	}
	cfg := filepath.Join(tmp, "reconf.toml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`backend = "etcd"
nodes = [%q]
confdir = %q
log_level = "debug"

[backends.secrets]
backend = "vault"
nodes = [%q]
auth_type = "token"
auth_token = %q
`, etcd.Addr, dir, vault.URL(), vault.Token)), 0o600))
	noSecrets := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s: a secret (%d bytes) shows in reconf's output", what, len(s))
			}
		}
	}

	r := runBin(t, nil, "-config-file", cfg, "-onetime")
	if r.code != 0 {
		t.Fatalf("-onetime: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	noSecrets("-onetime", r.stdout+r.stderr)
	if got := readFile(t, kvDest) + readFile(t, secDest); got != "host=db-1.example\n# db\npassword=pw-VAULT-1\n# end\n" {
		t.Fatalf("-onetime rendered %q", got)
	}
	for p, want := range map[string]os.FileMode{kvDest: 0o644, secDest: 0o600} {
		fi, err := os.Stat(p)
		must(t, err)
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %#o, want %#o", p, fi.Mode().Perm(), want)
		}
	}
	if !strings.Contains(r.stderr, "reads secrets and sets no mode: the destination is written 0600") {
		t.Errorf("the 0600 default was not logged:\n%s", r.stderr)
	}

	// -noop: the Vault resource's diff says which line changes, not what it holds.
	vaultPut(t, vault, "app/db", map[string]string{"password": "pw-VAULT-2"})
	r = runBin(t, nil, "-config-file", cfg, "-onetime", "-noop")
	if r.code != 0 {
		t.Fatalf("-noop: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	noSecrets("-noop", r.stdout+r.stderr)
	if want := "@@ -2 +2 @@\n# 1 line removed, 1 line added (not shown: the resource reads secrets)\n"; !strings.Contains(r.stdout, want) {
		t.Errorf("-noop diff lacks %q:\n%s", want, r.stdout)
	}

	// -watch: etcd is watched, Vault polled every second; each change reaches its own file.
	must(t, os.Remove(kvDest))
	must(t, os.Remove(secDest))
	p := startBin(t, bin, nil, "-config-file", cfg, "-watch", "-interval", "1")
	waitFor(t, "the first renders", 30*time.Second, func() bool {
		a, _ := os.ReadFile(kvDest)
		b, _ := os.ReadFile(secDest)
		return string(a) == "host=db-1.example\n" && strings.Contains(string(b), "password=pw-VAULT-2\n")
	})
	put("/app/host", "db-2.example")
	waitFor(t, "the etcd change in app.conf", 30*time.Second, func() bool {
		b, _ := os.ReadFile(kvDest)
		return string(b) == "host=db-2.example\n"
	})
	vaultPut(t, vault, "app/db", map[string]string{"password": "pw-VAULT-3"})
	secrets = append(secrets, "pw-VAULT-3")
	waitFor(t, "the Vault change in secret.conf", 30*time.Second, func() bool {
		b, _ := os.ReadFile(secDest)
		return strings.Contains(string(b), "password=pw-VAULT-3\n")
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}
	logs := p.stderr.String()
	noSecrets("-watch", logs)
	if n := strings.Count(logs, `backend \"secrets\" (vault) cannot be watched: polling every 1s`); n != 1 {
		t.Errorf("the polling was said %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, `msg="watch started" watch=/app`) {
		t.Errorf("etcd's prefix was not watched:\n%s", logs)
	}
}
