package vault

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// readPolicy may read and list everything under secret/app and nothing else.
const readPolicy = `
path "secret/data/app/*" { capabilities = ["read"] }
path "secret/metadata/app/*" { capabilities = ["list"] }
path "secret/metadata/app" { capabilities = ["list"] }
path "secret/data/app/denied" { capabilities = ["deny"] }
`

// setupAuth writes secret/app/db, the read policy, an AppRole role and a userpass user, each
// with tokens of the given TTLs ("" leaves Vault's defaults).
func setupAuth(t *testing.T, rc *vaultapi.Client, scan *secretScan, ttl, maxTTL string) (roleID, secretID string) {
	t.Helper()
	ctx := ctxT(t)
	_, err := rc.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "pw-Auth-1"})
	must(t, err)
	_, err = rc.KVv2("secret").Put(ctx, "app/denied", map[string]any{"value": "denied-Value-1"})
	must(t, err)
	scan.secret("pw-Auth-1", "denied-Value-1")
	must(t, rc.Sys().PutPolicyWithContext(ctx, "reconf-read", readPolicy))
	for _, m := range []string{"approle", "userpass"} {
		if err := rc.Sys().EnableAuthWithOptionsWithContext(ctx, m, &vaultapi.EnableAuthOptions{Type: m}); err != nil &&
			!strings.Contains(err.Error(), "path is already in use") {
			t.Fatalf("enable %s: %v", m, err)
		}
	}
	tok := map[string]any{"token_policies": "reconf-read"}
	if ttl != "" {
		tok["token_ttl"], tok["token_max_ttl"] = ttl, maxTTL
	}
	_, err = rc.Logical().WriteWithContext(ctx, "auth/approle/role/reconf", tok)
	must(t, err)
	sec, err := rc.Logical().ReadWithContext(ctx, "auth/approle/role/reconf/role-id")
	must(t, err)
	roleID = sec.Data["role_id"].(string)
	sec, err = rc.Logical().WriteWithContext(ctx, "auth/approle/role/reconf/secret-id", nil)
	must(t, err)
	secretID = sec.Data["secret_id"].(string)
	user := map[string]any{"password": "pass-Word-1"}
	for k, v := range tok {
		user[k] = v
	}
	_, err = rc.Logical().WriteWithContext(ctx, "auth/userpass/users/reconf", user)
	must(t, err)
	scan.secret(secretID, "pass-Word-1")
	return roleID, secretID
}

// TestAuthMethods logs in with each method, reads a secret, and checks that wrong credentials
// fail with backends.ErrAuth without showing them.
func TestAuthMethods(t *testing.T) {
	srv := testservers.Vault(t)
	rc := srv.RootClient(t)
	scan := newScan(t)
	scan.secret(srv.Token)
	roleID, secretID := setupAuth(t, rc, scan, "", "")
	tokSec, err := rc.Auth().Token().CreateWithContext(ctxT(t), &vaultapi.TokenCreateRequest{Policies: []string{"reconf-read"}})
	must(t, err)
	scan.secret(tokSec.Auth.ClientToken)

	for _, tc := range []struct {
		name string
		cfg  Config
		bad  Config
	}{
		{"token", Config{AuthType: AuthToken, Token: tokSec.Auth.ClientToken}, Config{AuthType: AuthToken, Token: "hvs.wrong-Token-1"}},
		{"app-role", Config{AuthType: AuthAppRole, RoleID: roleID, SecretID: secretID}, Config{AuthType: AuthAppRole, RoleID: roleID, SecretID: "wrong-Secret-Id-1"}},
		{"userpass", Config{AuthType: AuthUserpass, Username: "reconf", Password: "pass-Word-1"}, Config{AuthType: AuthUserpass, Username: "reconf", Password: "wrong-Pass-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scan.secret("hvs.wrong-Token-1", "wrong-Secret-Id-1", "wrong-Pass-1")
			tc.cfg.Address, tc.bad.Address = srv.URL(), srv.URL()
			c := client(t, scan, tc.cfg)
			if got := scan.mustGet(t, c, "/secret/app/db")["/secret/app/db/password"]; got != "pw-Auth-1" {
				t.Errorf("password = %q", got)
			}
			scan.secret(c.api.Token())
			b := client(t, scan, tc.bad)
			_, err := scan.get(t, b, "/secret/app/db")
			if !errors.Is(err, backends.ErrAuth) {
				t.Fatalf("wrong credentials: %v, want an error wrapping ErrAuth", err)
			}
			t.Logf("wrong credentials: %v", err)
		})
	}
}

// TestCertAuth logs in with a client certificate over TLS.
func TestCertAuth(t *testing.T) {
	srv := testservers.VaultTLS(t)
	rc := srv.RootClient(t)
	scan := newScan(t)
	setupAuth(t, rc, scan, "", "")
	pki := testservers.NewPKI(t)
	ctx := ctxT(t)
	must(t, rc.Sys().EnableAuthWithOptionsWithContext(ctx, "cert", &vaultapi.EnableAuthOptions{Type: "cert"}))
	ca, err := os.ReadFile(pki.CA)
	must(t, err)
	_, err = rc.Logical().WriteWithContext(ctx, "auth/cert/certs/reconf", map[string]any{
		"certificate": string(ca), "token_policies": "reconf-read",
	})
	must(t, err)
	c := client(t, scan, Config{Address: srv.URL(), AuthType: AuthCert, CAFile: srv.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey})
	if got := scan.mustGet(t, c, "/secret/app/db")["/secret/app/db/password"]; got != "pw-Auth-1" {
		t.Errorf("password = %q", got)
	}
	scan.secret(c.api.Token())
	// A certificate Vault does not trust is refused.
	other := testservers.NewPKI(t)
	b := client(t, scan, Config{Address: srv.URL(), AuthType: AuthCert, CAFile: srv.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey})
	if _, err := scan.get(t, b, "/secret/app/db"); !errors.Is(err, backends.ErrAuth) {
		t.Fatalf("untrusted certificate: %v, want ErrAuth", err)
	}
}

// TestPolicyDeniesPath: a path the policy denies fails its Get with the path and 403; other
// prefixes still read.
func TestPolicyDeniesPath(t *testing.T) {
	srv := testservers.Vault(t)
	rc := srv.RootClient(t)
	scan := newScan(t)
	setupAuth(t, rc, scan, "", "")
	c := client(t, scan, Config{Address: srv.URL(), AuthType: AuthUserpass, Username: "reconf", Password: "pass-Word-1"})
	_, err := scan.get(t, c, "/secret/app/denied")
	if !errors.Is(err, backends.ErrAuth) || !strings.Contains(err.Error(), "secret/data/app/denied") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("denied path: %v; want ErrAuth naming secret/data/app/denied and 403", err)
	}
	// The whole folder holds the denied secret: it fails too (stale beats partial).
	if _, err := scan.get(t, c, "/secret/app"); !errors.Is(err, backends.ErrAuth) {
		t.Errorf("folder with a denied secret: %v, want ErrAuth", err)
	}
	if got := scan.mustGet(t, c, "/secret/app/db")["/secret/app/db/password"]; got != "pw-Auth-1" {
		t.Errorf("allowed path after a denied one: %q", got)
	}
	scan.secret(c.api.Token())

	// A policy that may read one secret but list nothing: the secret reads (its LIST is
	// refused, and it is a leaf); its folder, which may not be listed, is an error.
	ctx := ctxT(t)
	must(t, rc.Sys().PutPolicyWithContext(ctx, "solo", `path "secret/data/app/db" { capabilities = ["read"] }`))
	tok, err := rc.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: []string{"solo"}})
	must(t, err)
	scan.secret(tok.Auth.ClientToken)
	solo := client(t, scan, Config{Address: srv.URL(), AuthType: AuthToken, Token: tok.Auth.ClientToken})
	if got := scan.mustGet(t, solo, "/secret/app/db")["/secret/app/db/password"]; got != "pw-Auth-1" {
		t.Errorf("read-only secret: %q", got)
	}
	_, err = scan.get(t, solo, "/secret/app")
	if !errors.Is(err, backends.ErrAuth) || !strings.Contains(err.Error(), "list secret/metadata/app/") {
		t.Errorf("unlistable folder: %v; want ErrAuth naming list secret/metadata/app/", err)
	}
}

// TestRenewAndRelogin: app-role and userpass tokens live 2 s and at most 6 s. The client renews
// them and, at the max TTL, logs in again; reads keep working all along.
func TestRenewAndRelogin(t *testing.T) {
	srv := testservers.Vault(t)
	rc := srv.RootClient(t)
	scan := newScan(t)
	roleID, secretID := setupAuth(t, rc, scan, "2s", "6s")
	for _, cfg := range []Config{
		{AuthType: AuthAppRole, RoleID: roleID, SecretID: secretID},
		{AuthType: AuthUserpass, Username: "reconf", Password: "pass-Word-1"},
	} {
		t.Run(cfg.AuthType, func(t *testing.T) {
			cfg.Address = srv.URL()
			c := client(t, scan, cfg)
			scan.mustGet(t, c, "/secret/app/db")
			first := c.api.Token()
			scan.secret(first)
			start := time.Now()
			// Past two token lifetimes and the max TTL the client still reads, with a new token.
			testutil.Until(t, 30*time.Second, 200*time.Millisecond, func() error {
				if _, err := scan.get(t, c, "/secret/app/db"); err != nil {
					t.Fatalf("read %v after login: %v", time.Since(start), err)
				}
				scan.secret(c.api.Token())
				if time.Since(start) < 8*time.Second || c.api.Token() == first {
					return errors.New("no new login after the max TTL yet")
				}
				return nil
			})
			logs := scan.logs.String()
			if !strings.Contains(logs, "token renewed") {
				t.Errorf("no renewal logged:\n%s", logs)
			}
			if !strings.Contains(logs, "logging in again") {
				t.Errorf("no re-login logged:\n%s", logs)
			}
		})
	}
}

// TestTokenRenewal: a renewable -auth-token of 2 s is renewed and keeps reading past its TTL;
// once it reaches its max TTL the log says it cannot be replaced.
func TestTokenRenewal(t *testing.T) {
	srv := testservers.Vault(t)
	rc := srv.RootClient(t)
	scan := newScan(t)
	setupAuth(t, rc, scan, "", "")
	sec, err := rc.Auth().Token().CreateWithContext(ctxT(t), &vaultapi.TokenCreateRequest{
		Policies: []string{"reconf-read"}, TTL: "2s", ExplicitMaxTTL: "5s", Renewable: ptr(true),
	})
	must(t, err)
	tok := sec.Auth.ClientToken
	scan.secret(tok)
	c := client(t, scan, Config{Address: srv.URL(), AuthType: AuthToken, Token: tok})
	scan.mustGet(t, c, "/secret/app/db")
	start := time.Now()
	testutil.Until(t, 20*time.Second, 200*time.Millisecond, func() error {
		if time.Since(start) < 3500*time.Millisecond {
			if _, err := scan.get(t, c, "/secret/app/db"); err != nil {
				t.Fatalf("read %v after start (token TTL 2 s, renewed): %v", time.Since(start), err)
			}
		}
		if !strings.Contains(scan.logs.String(), "reads fail once it expires") {
			return errors.New("no warning about the token's max TTL")
		}
		return nil
	})
	// Past the max TTL Vault refuses the token: an auth error, not a hang or a panic.
	testutil.Until(t, 20*time.Second, 200*time.Millisecond, func() error {
		_, err := scan.get(t, c, "/secret/app/db")
		if !errors.Is(err, backends.ErrAuth) {
			return errors.New("token past its max TTL still reads")
		}
		return nil
	})
}

func ptr[T any](v T) *T { return &v }

// TestRevokedTokenRelogin: a login token revoked behind the client's back is replaced at the
// next Get by logging in again.
func TestRevokedTokenRelogin(t *testing.T) {
	srv := testservers.Vault(t)
	rc := srv.RootClient(t)
	scan := newScan(t)
	roleID, secretID := setupAuth(t, rc, scan, "", "")
	c := client(t, scan, Config{Address: srv.URL(), AuthType: AuthAppRole, RoleID: roleID, SecretID: secretID})
	scan.mustGet(t, c, "/secret/app/db")
	old := c.api.Token()
	scan.secret(old)
	must(t, rc.Auth().Token().RevokeTreeWithContext(ctxT(t), old))
	if got := scan.mustGet(t, c, "/secret/app/db")["/secret/app/db/password"]; got != "pw-Auth-1" {
		t.Fatalf("after the token was revoked: %q", got)
	}
	if c.api.Token() == old {
		t.Fatal("the revoked token is still in use")
	}
	scan.secret(c.api.Token())
}
