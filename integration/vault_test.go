package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/reconf/reconf/internal/testservers"
)

// TestVaultConfdTemplate runs the reconf binary with -backend vault: -onetime with a token,
// then -watch (polled at -interval 1) logging in with app-role, rendering a confd template
// from a KV v2 secret; a new version of the secret reaches the file, and a resource whose secret
// the policy denies fails alone. No secret value, token or secret ID shows in reconf's output.
func TestVaultConfdTemplate(t *testing.T) {
	srv := testservers.Vault(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc := srv.RootClient(t)
	put := func(path string, data map[string]any) {
		t.Helper()
		if _, err := rc.KVv2("secret").Put(ctx, path, data); err != nil {
			t.Fatal(err)
		}
	}
	put("app/db", map[string]any{"user": "app", "password": "pw-E2E-1"})
	put("app/port", map[string]any{"value": "5432"})
	secrets := []string{srv.Token, "pw-E2E-1", "pw-E2E-2"}

	// An app-role that may read secret/app.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rc.Sys().PutPolicyWithContext(ctx, "app", `path "secret/data/app/*" { capabilities = ["read"] }
path "secret/metadata/app/*" { capabilities = ["list"] }`))
	must(rc.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vaultapi.EnableAuthOptions{Type: "approle"}))
	_, err := rc.Logical().WriteWithContext(ctx, "auth/approle/role/app", map[string]any{"token_policies": "app"})
	must(err)
	sec, err := rc.Logical().ReadWithContext(ctx, "auth/approle/role/app/role-id")
	must(err)
	roleID := sec.Data["role_id"].(string)
	sec, err = rc.Logical().WriteWithContext(ctx, "auth/approle/role/app/secret-id", nil)
	must(err)
	secretID := sec.Data["secret_id"].(string)
	secrets = append(secrets, secretID)

	dir := t.TempDir()
	confdir := filepath.Join(dir, "confdir")
	dest := filepath.Join(dir, "app.conf")
	writeFile(t, filepath.Join(confdir, "conf.d", "app.toml"),
		"[template]\nsrc = \"app.conf.tmpl\"\ndest = \""+dest+"\"\nkeys = [\"/secret/app\"]\n")
	writeFile(t, filepath.Join(confdir, "templates", "app.conf.tmpl"),
		"user={{getv \"/secret/app/db/user\"}}\npassword={{getv \"/secret/app/db/password\"}}\nport={{getv \"/secret/app/port\"}}\n"+
			"{{range gets \"/secret/app/*\"}}key {{.Key}}\n{{end}}")
	common := []string{"-backend", "vault", "-node", srv.URL(), "-confdir", confdir,
		"-config-file", filepath.Join(dir, "none.toml"), "-log-level", "debug"}
	want := func(pw string) string {
		return "user=app\npassword=" + pw + "\nport=5432\nkey /secret/app/db\nkey /secret/app/port\n"
	}
	noSecrets := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s: a secret (%d bytes) shows in reconf's output", what, len(s))
			}
		}
	}

	// onetime runs reconf -onetime with args and checks the file it renders and its output.
	onetime := func(what string, args ...string) {
		t.Helper()
		out, err := execCombined(reconfBin, args...)
		if err != nil {
			t.Fatalf("reconf %s: %v\n%s", what, err, out)
		}
		if got := readFile(t, dest); got != want("pw-E2E-1") {
			t.Fatalf("%s rendered:\n%s\nwant:\n%s", what, got, want("pw-E2E-1"))
		}
		noSecrets(what, out)
	}

	onetime("-onetime", append(common, "-onetime", "-auth-type", "token", "-auth-token", srv.Token)...)
	// A resource reading secrets and setting no mode writes its file 0600 (backends.SecretHolder).
	if st, err := os.Stat(dest); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o600 {
		t.Errorf("-onetime: %s mode %v, want 0600", dest, st.Mode().Perm())
	}
	must(os.Remove(dest))

	// The same from confd.toml keys: backend, nodes, auth_type, role_id, secret_id.
	toml := filepath.Join(dir, "confd.toml")
	writeFile(t, toml, "backend = \"vault\"\nnodes = [\""+srv.URL()+"\"]\nauth_type = \"app-role\"\n"+
		"role_id = \""+roleID+"\"\nsecret_id = \""+secretID+"\"\nconfdir = \""+confdir+"\"\n")
	onetime("-onetime -config-file", "-onetime", "-config-file", toml, "-log-level", "debug")
	must(os.Remove(dest))

	// Vault as a named store beside a default env backend ([backends.secrets], README's example).
	named := filepath.Join(dir, "named")
	writeFile(t, filepath.Join(named, "conf.d", "app.toml"), "[template]\nbackend = \"secrets\"\nsrc = \"app.conf.tmpl\"\n"+
		"dest = \""+dest+"\"\nkeys = [\"/secret/app\"]\n")
	writeFile(t, filepath.Join(named, "templates", "app.conf.tmpl"), readFile(t, filepath.Join(confdir, "templates", "app.conf.tmpl")))
	writeFile(t, toml, "backend = \"env\"\nconfdir = \""+named+"\"\n[backends.secrets]\nbackend = \"vault\"\nnodes = [\""+srv.URL()+"\"]\n"+
		"auth_type = \"app-role\"\nrole_id = \""+roleID+"\"\nsecret_id = \""+secretID+"\"\n")
	onetime("-onetime with [backends.secrets]", "-onetime", "-config-file", toml, "-log-level", "debug")
	must(os.Remove(dest))

	// A second resource reads a secret the app-role's policy does not grant: it fails, naming the
	// path and the status, and app.conf still renders.
	put("denied", map[string]any{"value": "denied-E2E-1"})
	secrets = append(secrets, "denied-E2E-1")
	denied := filepath.Join(dir, "denied.conf")
	writeFile(t, filepath.Join(confdir, "conf.d", "denied.toml"),
		"[template]\nsrc = \"denied.conf.tmpl\"\ndest = \""+denied+"\"\nkeys = [\"/secret/denied\"]\n")
	writeFile(t, filepath.Join(confdir, "templates", "denied.conf.tmpl"), "{{getv \"/secret/denied\"}}\n")

	p := start(t, dir, "reconf", reconfBin, append(common, "-watch", "-interval", "1",
		"-auth-type", "app-role", "-role-id", roleID, "-secret-id", secretID)...)
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Log(p.tail(40))
		}
	})
	eventually(t, 20*time.Second, "-watch renders", func() bool {
		b, _ := os.ReadFile(dest)
		return string(b) == want("pw-E2E-1")
	})
	eventually(t, 20*time.Second, "the denied resource's error is logged", func() bool {
		out := p.output()
		return strings.Contains(out, "secret/data/denied") && strings.Contains(out, "HTTP 403")
	})
	if _, err := os.Stat(denied); !os.IsNotExist(err) {
		t.Errorf("%s exists (%v): a resource whose secret is denied must not write", denied, err)
	}
	put("app/db", map[string]any{"user": "app", "password": "pw-E2E-2"})
	eventually(t, 20*time.Second, "a new version reaches the file", func() bool {
		b, _ := os.ReadFile(dest)
		return string(b) == want("pw-E2E-2")
	})
	p.stop(t, syscall.SIGTERM, 10*time.Second)
	noSecrets("-watch", p.output())
}
