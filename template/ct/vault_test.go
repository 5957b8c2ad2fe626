package ct_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	ctconfig "github.com/hashicorp/consul-template/config"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
	"github.com/reconf/reconf/template/ct"
)

// TestMain silences consul-template's dependency and watch packages, which trace every request
// through the standard logger.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// testLease is default_lease_duration in these tests (process-wide, as in consul-template:
// the first Vault sets it): a KV v2 secret is read again after about 0.9 of it.
const testLease = 3 * time.Second

// vaultEnv is a dev Vault with the test's data: KV v2 at secret/ (db, other), KV v1 at kv1/
// (app, and short with a 2 s lease), and a token that may read secret/data/db alone.
type vaultEnv struct {
	srv    *testservers.VaultServer
	root   *vaultapi.Client // writes the data
	narrow string           // a token whose policy reads secret/data/db only
}

func startVault(t *testing.T) *vaultEnv {
	t.Helper()
	srv := testservers.Vault(t)
	root := srv.RootClient(t)
	e := &vaultEnv{srv: srv, root: root}
	e.write(t, "sys/mounts/kv1", map[string]any{"type": "kv", "options": map[string]any{"version": "1"}})
	e.write(t, "secret/data/db", map[string]any{"data": map[string]any{"password": "s3cr3t", "user": "app"}})
	e.write(t, "secret/data/other", map[string]any{"data": map[string]any{"x": "1"}})
	e.write(t, "kv1/app", map[string]any{"user": "u", "ttl": "1h"})
	e.write(t, "sys/policies/acl/only-db", map[string]any{"policy": `path "secret/data/db" { capabilities = ["read"] }`})
	s, err := root.Logical().Write("auth/token/create", map[string]any{"policies": []string{"only-db"}})
	if err != nil || s.Auth == nil {
		t.Fatalf("token create: %v", err)
	}
	e.narrow = s.Auth.ClientToken
	return e
}

func (e *vaultEnv) write(t *testing.T, path string, data map[string]any) {
	t.Helper()
	if _, err := e.root.Logical().Write(path, data); err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
}

// vault makes a ct.Vault with token (root when ""), running until the test ends; changed
// receives a value per answer, and errs Run's error.
func (e *vaultEnv) vault(t *testing.T, token string, retry bool) (*ct.Vault, <-chan error) {
	t.Helper()
	if token == "" {
		token = e.srv.Token
	}
	c := ctconfig.DefaultVaultConfig()
	c.Address = ctconfig.String(e.srv.URL())
	c.Token = ctconfig.String(token)
	c.RenewToken = ctconfig.Bool(false)
	c.DefaultLeaseDuration = ctconfig.TimeDuration(testLease)
	c.Retry = &ctconfig.RetryConfig{Enabled: ctconfig.Bool(retry)}
	c.Finalize()
	v, err := ct.NewVault(c, false, nil)
	if err != nil {
		t.Fatalf("NewVault: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs, done := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		errs <- v.Run(ctx, func() {})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return v, errs
}

// renderVault renders contents until it stops waiting for Vault (each render is a new pass,
// as the runner's after a kick) and returns the first render's result and the last's output.
func renderVault(t *testing.T, st *ct.Store, contents string) (first ct.Result, out string) {
	t.Helper()
	tmpl, err := ct.New(ct.Config{Contents: contents, Destination: t.TempDir() + "/out"})
	if err != nil {
		t.Fatal(err)
	}
	first, err = tmpl.Render(context.Background(), st.Pass())
	if err == nil {
		return first, string(first.Output)
	}
	if !errors.Is(err, ct.ErrWaiting) {
		t.Fatalf("render %q: %v", contents, err)
	}
	testutil.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		res, err := tmpl.Render(context.Background(), st.Pass())
		out = string(res.Output)
		return err
	})
	return first, out
}

func TestVaultSecret(t *testing.T) {
	e := startVault(t)
	v, _ := e.vault(t, "", true)
	st := &ct.Store{Vault: v}
	for _, c := range []struct{ tmpl, want, dep string }{
		{`{{with secret "secret/db"}}{{.Data.data.password}} {{.Data.data.user}} {{.Data.metadata.version}}{{end}}`, "s3cr3t app 1", "vault.read(secret/db)"},
		{`{{with secret "secret/data/db"}}{{.Data.data.password}}{{end}}`, "s3cr3t", "vault.read(secret/data/db)"},
		{`{{with secret "/kv1/app/"}}{{.Data.user}} {{.LeaseDuration}} {{.Renewable}} {{.Data.ttl}}{{end}}`, "u 3600 false 1h", "vault.read(kv1/app)"},
		{`{{range secrets "secret/"}}{{.}},{{end}}`, "db,other,", "vault.list(secret)"},
		{`{{range secrets "kv1"}}{{.}},{{end}}`, "app,", "vault.list(kv1)"},
	} {
		first, out := renderVault(t, st, c.tmpl)
		if !slices.Equal(first.Missing, []string{c.dep}) || len(first.Output) != 0 {
			t.Errorf("%s: first render: Missing %q, Output %q; want it to wait for %s", c.tmpl, first.Missing, first.Output, c.dep)
		}
		if !slices.Equal(first.Deps.Vault, []string{c.dep}) {
			t.Errorf("%s: Deps.Vault = %q", c.tmpl, first.Deps.Vault)
		}
		if out != c.want {
			t.Errorf("%s: rendered %q, want %q", c.tmpl, out, c.want)
		}
	}
}

// TestVaultLease: a non-renewable secret is read again near the end of its lease (KV v1 with
// a ttl, and KV v2 at default_lease_duration), with no other trigger.
func TestVaultLease(t *testing.T) {
	e := startVault(t)
	e.write(t, "kv1/short", map[string]any{"v": "one", "ttl": "2s"})
	v, _ := e.vault(t, "", true)
	st := &ct.Store{Vault: v}
	const tmpl = `{{with secret "kv1/short"}}{{.Data.v}}{{end}} {{with secret "secret/other"}}{{.Data.data.x}}{{end}}`
	if _, out := renderVault(t, st, tmpl); out != "one 1" {
		t.Fatalf("rendered %q", out)
	}
	e.write(t, "kv1/short", map[string]any{"v": "two", "ttl": "2s"})
	e.write(t, "secret/data/other", map[string]any{"data": map[string]any{"x": "2"}})
	tm, err := ct.New(ct.Config{Contents: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	took := testutil.Until(t, 4*testLease, 50*time.Millisecond, func() error {
		res, err := tm.Render(context.Background(), st.Pass())
		if err == nil && string(res.Output) != "two 2" {
			err = fmt.Errorf("rendered %q", res.Output)
		}
		return err
	})
	t.Logf("re-read after %v", took)
}

// TestVaultWrite: secret with parameters writes (pki/issue) once, and every later pass reads
// the same answer until its lease says otherwise; pkiCert issues a certificate.
func TestVaultWrite(t *testing.T) {
	e := startVault(t)
	e.write(t, "sys/mounts/pki", map[string]any{"type": "pki"})
	e.write(t, "pki/root/generate/internal", map[string]any{"common_name": "example.com", "ttl": "24h"})
	e.write(t, "pki/roles/x", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "1h"})
	v, _ := e.vault(t, "", true)
	st := &ct.Store{Vault: v}
	const tmpl = `{{with secret "pki/issue/x" "common_name=foo.example.com" "ttl=30m"}}{{.Data.serial_number}}{{end}}`
	first, serial := renderVault(t, st, tmpl)
	if len(first.Missing) != 1 || !strings.HasPrefix(first.Missing[0], "vault.write(pki/issue/x -> ") || serial == "" {
		t.Fatalf("Missing %q, serial %q", first.Missing, serial)
	}
	for range 3 {
		if _, again := renderVault(t, st, tmpl); again != serial {
			t.Fatalf("a later pass issued another certificate: %q, then %q", serial, again)
		}
	}
	_, cert := renderVault(t, st, `{{with pkiCert "pki/issue/x" "common_name=bar.example.com"}}{{.Cert}}{{end}}`)
	if !strings.HasPrefix(cert, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("pkiCert rendered %q", cert)
	}
}

// TestVaultErrors: a denied or missing secret waits, and with retries off Run fails with
// consul-template's error, naming the path and not the token; a template error that shows a
// secret's value shows it redacted.
func TestVaultErrors(t *testing.T) {
	e := startVault(t)
	for _, c := range []struct{ path, want string }{
		{"kv1/app", "permission denied"},
		{"secret/missing", "no secret exists at secret/data/missing"},
	} {
		token := e.narrow
		if c.path == "secret/missing" {
			token = ""
		}
		v, errs := e.vault(t, token, false)
		st := &ct.Store{Vault: v}
		tmpl, err := ct.New(ct.Config{Contents: `{{with secret "` + c.path + `"}}{{.Data}}{{end}}`})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tmpl.Render(context.Background(), st.Pass()); !errors.Is(err, ct.ErrWaiting) {
			t.Errorf("%s: render: %v, want it to wait", c.path, err)
		}
		select {
		case err := <-errs:
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("%s: Run: %v, want an error naming the path and %q", c.path, err, c.want)
			}
			for _, s := range []string{e.srv.Token, e.narrow} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("%s: the error shows a token: %v", c.path, err)
				}
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not fail", c.path)
		}
	}

	v, _ := e.vault(t, e.narrow, true)
	st := &ct.Store{Vault: v}
	if _, out := renderVault(t, st, `{{with secret "secret/db"}}{{.Data.data.password}}{{end}}`); out != "s3cr3t" {
		t.Errorf("the narrow token read %q", out)
	}
	tmpl, err := ct.New(ct.Config{Contents: `{{with secret "secret/db"}}{{.Data.data.password | parseInt}}{{end}}`})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmpl.Render(context.Background(), st.Pass())
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("render: %v; want an error with the value redacted", err)
	}
}

// TestVaultNone: without a Vault the functions fail as not available.
func TestVaultNone(t *testing.T) {
	for _, f := range []string{`secret "a"`, `secrets "a"`, `pkiCert "a"`} {
		_, _, err := render(t, &ct.Store{}, "{{"+f+"}}")
		if err == nil || !strings.Contains(err.Error(), ct.ErrUnsupported.Error()) {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestVaultRenew: a renewable secret (a token from auth/token/create) is renewed, as
// consul-template renews it (its expiry moves), and once it cannot be renewed any more (its
// explicit max TTL) it is written again: the template renders a new token.
func TestVaultRenew(t *testing.T) {
	e := startVault(t)
	v, _ := e.vault(t, "", true)
	st := &ct.Store{Vault: v}
	const tmpl = `{{ with secret "auth/token/create" "policies=default" "ttl=2s" "explicit_max_ttl=6s" }}{{ .Auth.Accessor }} {{ .Auth.Renewable }}{{ end }}`
	_, out := renderVault(t, st, tmpl)
	accessor, renewable, _ := strings.Cut(out, " ")
	if renewable != "true" {
		t.Fatalf("rendered %q, want a renewable token", out)
	}
	expiry := func() string {
		s, err := e.root.Logical().Write("auth/token/lookup-accessor", map[string]any{"accessor": accessor})
		if err != nil || s == nil {
			return fmt.Sprint("lookup: ", err)
		}
		return fmt.Sprint(s.Data["expire_time"])
	}
	first := expiry()
	testutil.Until(t, 5*time.Second, 50*time.Millisecond, func() error {
		if now := expiry(); now == first {
			return fmt.Errorf("token not renewed: expires %s", now)
		}
		return nil
	})
	tm, err := ct.New(ct.Config{Contents: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, 15*time.Second, 50*time.Millisecond, func() error {
		res, err := tm.Render(context.Background(), st.Pass())
		if err == nil && strings.HasPrefix(string(res.Output), accessor+" ") {
			err = errors.New("still the first token")
		}
		return err
	})
}
