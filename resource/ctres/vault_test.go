package ctres_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	ctconfig "github.com/hashicorp/consul-template/config"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
	"github.com/reconf/reconf/resource"
	"github.com/reconf/reconf/template/ct"
)

// TestSetVault: a template reading a Vault secret waits for its first answer (the Vault kicks
// the set, here through the changed channel), is then written 0600 without perms, 0640 with,
// beside a template reading a key (0644); the secrets a pass no longer reads are no longer
// watched.
func TestSetVault(t *testing.T) {
	srv := testservers.Vault(t)
	root := srv.RootClient(t)
	for _, p := range []string{"secret/data/db", "secret/data/other"} {
		if _, err := root.Logical().Write(p, map[string]any{"data": map[string]any{"pw": "s3cr3t"}}); err != nil {
			t.Fatal(err)
		}
	}
	c := ctconfig.DefaultVaultConfig()
	c.Address, c.Token, c.RenewToken = ctconfig.String(srv.URL()), ctconfig.String(srv.Token), ctconfig.Bool(false)
	c.Finalize()
	v, err := ct.NewVault(c, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, func() { changed <- struct{}{} }) }()
	t.Cleanup(func() { cancel(); <-done })

	f := newFixture(t, "app:\n  name: web\n")
	f.set.Store.Vault = v
	f.add(`{{ with secret "secret/db" }}{{ .Data.data.pw }}{{ end }}`, "secret.out", "")
	withPerms := f.add(`{{ with secret "secret/db" }}{{ .Data.data.pw }}{{ end }}`, "perms.out", "")
	withPerms.Res.Mode, withPerms.Res.ModeSet = 0o640, true
	f.add(`{{ key "app/name" }}`, "key.out", "")
	if _, err := f.sync(); !errors.Is(err, resource.ErrWaiting) {
		t.Fatalf("first pass: %v, want it to wait for Vault", err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from Vault")
	}
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"secret.out": 0o600, "perms.out": 0o640, "key.out": 0o644} {
		st, err := os.Stat(f.path(name))
		if err != nil {
			t.Errorf("%s: %v; want mode %v", name, err, want)
		} else if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v; want mode %v", name, st.Mode(), want)
		}
	}
	f.want("secret.out", "s3cr3t")

	// The templates now read secret/other: secret/db is dropped, secret/other watched.
	for _, tpl := range f.set.Templates[:2] {
		nt, err := ct.New(ct.Config{Contents: `{{ with secret "secret/other" }}{{ .Data.data.pw }}{{ end }}`, Destination: tpl.Res.Dest})
		if err != nil {
			t.Fatal(err)
		}
		tpl.T = nt
	}
	testutil.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, err := f.sync()
		return err
	})
	if got := f.set.Store.Vault.Watching(); len(got) != 1 || got[0] != "vault.read(secret/other)" {
		t.Errorf("watching %q, want vault.read(secret/other) alone", got)
	}
}
