package ct

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ctconfig "github.com/hashicorp/consul-template/config"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
	"github.com/reconf/reconf/template/ct"
)

// vaultWrite is one line of a case's vault section: a write of JSON data to a Vault path
// (sys/mounts/kv1={"type":"kv"} mounts an engine; secret/data/db={"data":{...}} writes KV v2).
type vaultWrite struct {
	path string
	data map[string]any
}

func parseVaultLine(line string) (vaultWrite, error) {
	p, js, ok := strings.Cut(line, "=")
	if !ok || p == "" {
		return vaultWrite{}, fmt.Errorf("want path={json}, got %q", line)
	}
	w := vaultWrite{path: p}
	if err := json.Unmarshal([]byte(js), &w.data); err != nil {
		return vaultWrite{}, fmt.Errorf("%s: %w", p, err)
	}
	return w, nil
}

// caseVault is the dev Vault of one case that reads Vault (a fresh one per case, so that
// listings and mounts see the case's data alone).
type caseVault struct {
	srv  *testservers.VaultServer
	root *vaultapi.Client
}

// startCaseVault starts a Vault, writes the case's vault section and sets c.vaultArgs, the
// flags both binaries are given.
func startCaseVault(t testing.TB, c *tcase) *caseVault {
	t.Helper()
	srv := testservers.Vault(t)
	root := srv.RootClient(t)
	v := &caseVault{srv: srv, root: root}
	for _, w := range c.vault {
		v.write(t, w)
	}
	c.vaultArgs = []string{"-vault-addr", srv.URL(), "-vault-token", srv.Token, "-vault-renew-token=false"}
	return v
}

// write writes one secret (a new KV v2 mount may refuse writes for a moment while it sets up).
func (v *caseVault) write(t testing.TB, w vaultWrite) {
	t.Helper()
	testutil.Until(t, opTimeout, 50*time.Millisecond, func() error {
		_, err := v.root.Logical().Write(w.path, w.data)
		return err
	})
}

// vault is reconf's Vault for in-process renders (ct.Render) from this Vault, as the reconf
// binary makes it from the same flags; it runs until the test ends.
func (v *caseVault) vault(t testing.TB) *ct.Vault {
	t.Helper()
	c := ctconfig.DefaultVaultConfig()
	c.Address = ctconfig.String(v.srv.URL())
	c.Token = ctconfig.String(v.srv.Token)
	c.RenewToken = ctconfig.Bool(false)
	c.Finalize()
	vt, err := ct.NewVault(c, false, nil)
	if err != nil {
		t.Fatalf("NewVault: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = vt.Run(ctx, func() {}) // a failed secret stays missing: the render waits
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return vt
}

// renderVault renders as render does, again and again while it waits for nothing but Vault
// answers, for up to patience (consul-template renders again when its watcher answers).
func renderVault(t testing.TB, c *tcase, dir string, store *ct.Store, patience time.Duration) (string, ct.Result, error) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		got, res, err := render(t, c, dir, store)
		if !errors.Is(err, ct.ErrWaiting) || !onlyVault(res.Missing) || time.Now().After(deadline) {
			return got, res, err
		}
		time.Sleep(20 * time.Millisecond) // polling for the Vault's answer, bounded by patience
	}
}

// onlyVault reports whether every missing dependency is a Vault one.
func onlyVault(missing []string) bool {
	for _, m := range missing {
		if !strings.HasPrefix(m, "vault.") {
			return false
		}
	}
	return len(missing) > 0
}

// daemon is a binary (consul-template or reconf) running in watch mode in dir until the test
// ends (then it gets SIGINT by its pid, and SIGKILL if it outlives the grace period).
type daemon struct {
	name   string
	cmd    *exec.Cmd
	stderr testutil.SyncBuffer
	done   chan struct{}
}

func startDaemon(t *testing.T, bin, dir string, args ...string) *daemon {
	t.Helper()
	d := &daemon{name: filepath.Base(bin), cmd: exec.Command(bin, args...), done: make(chan struct{})}
	d.cmd.Dir = dir
	d.cmd.Env = testservers.ConsulTemplateEnv()
	d.cmd.Stderr = &d.stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.done:
		case <-time.After(testservers.ConsulTemplateGrace):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// TestVaultWatch runs consul-template and reconf side by side in watch mode on one Vault: both
// render a KV v1 secret with a 2 s lease and a KV v2 secret, and both render the KV v1
// secret's new value once its lease is near its end (nothing else tells them it changed).
// reconf writes the file 0600 (README, deliberate difference 10), consul-template 0644; the
// token and the secret values stay out of reconf's log.
func TestVaultWatch(t *testing.T) {
	ctBin := testservers.ConsulTemplateBinary(t)
	e := startConsul(t)
	c := &tcase{vault: []vaultWrite{
		{"sys/mounts/kv1", map[string]any{"type": "kv", "options": map[string]any{"version": "1"}}},
		{"kv1/short", map[string]any{"v": "one-s3cr3t", "ttl": "2s"}},
		{"secret/data/db", map[string]any{"data": map[string]any{"password": "pw-s3cr3t"}}},
	}}
	cv := startCaseVault(t, c)
	const tmpl = `{{ with secret "kv1/short" }}{{ .Data.v }}{{ end }} {{ with secret "secret/db" }}{{ .Data.data.password }}{{ end }}` + "\n"
	var ds []*daemon
	var dirs []string
	for _, bin := range []string{ctBin, reconfBin} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "in.ctmpl"), []byte(tmpl), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-consul-addr", e.srv.Addr, "-log-level", "debug", "-template", "in.ctmpl:out"}, c.vaultArgs...)
		ds = append(ds, startDaemon(t, bin, dir, args...))
		dirs = append(dirs, dir)
	}
	waitFor := func(want string) {
		t.Helper()
		for i, d := range ds {
			testutil.Until(t, 15*time.Second, 50*time.Millisecond, func() error {
				b, err := os.ReadFile(filepath.Join(dirs[i], "out"))
				if err == nil && string(b) != want {
					err = fmt.Errorf("%s wrote %q, want %q", d.name, b, want)
				}
				return err
			})
		}
	}
	waitFor("one-s3cr3t pw-s3cr3t\n")
	for i, want := range []os.FileMode{0o644, 0o600} {
		if st, err := os.Stat(filepath.Join(dirs[i], "out")); err != nil {
			t.Errorf("%s: out: %v; want mode %v", ds[i].name, err, want)
		} else if st.Mode().Perm() != want {
			t.Errorf("%s: out: mode %v; want mode %v", ds[i].name, st.Mode(), want)
		}
	}
	cv.write(t, vaultWrite{"kv1/short", map[string]any{"v": "two-s3cr3t", "ttl": "2s"}})
	took := time.Now()
	waitFor("two-s3cr3t pw-s3cr3t\n")
	t.Logf("both re-read the secret %v after it changed", time.Since(took).Round(10*time.Millisecond))
	log := ds[1].stderr.String()
	for _, s := range []string{cv.srv.Token, "s3cr3t"} {
		if strings.Contains(log, s) {
			t.Errorf("reconf's log shows %q:\n%s", s, log)
		}
	}
}

// TestVaultFailure: with retries off, a secret that is missing or denied stops both binaries
// with exit 14 and no file; reconf's log names the path, not the token.
func TestVaultFailure(t *testing.T) {
	ctBin := testservers.ConsulTemplateBinary(t)
	e := startConsul(t)
	c := &tcase{vault: []vaultWrite{
		{"secret/data/db", map[string]any{"data": map[string]any{"pw": "s3cr3t"}}},
		{"sys/policies/acl/none", map[string]any{"policy": `path "secret/data/other" { capabilities = ["read"] }`}},
	}}
	cv := startCaseVault(t, c)
	s, err := cv.root.Logical().Write("auth/token/create", map[string]any{"policies": []string{"none"}})
	if err != nil || s.Auth == nil {
		t.Fatalf("token create: %v", err)
	}
	for _, sc := range []struct{ name, token, tmpl string }{
		{"missing", cv.srv.Token, `{{ with secret "secret/missing" }}{{ .Data }}{{ end }}`},
		{"denied", s.Auth.ClientToken, `{{ with secret "secret/db" }}{{ .Data }}{{ end }}`},
	} {
		t.Run(sc.name, func(t *testing.T) {
			var got [2]string
			for i, bin := range []string{ctBin, reconfBin} {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "in.ctmpl"), []byte(sc.tmpl), 0o644); err != nil {
					t.Fatal(err)
				}
				r := testservers.ConsulTemplateCmd{
					Binary: bin, ConsulAddr: e.srv.Addr, Dir: dir, Timeout: runTimeout,
					Args: []string{"-once", "-template", "in.ctmpl:out", "-vault-addr", cv.srv.URL(),
						"-vault-token", sc.token, "-vault-renew-token=false", "-vault-retry=false"},
				}.Run(t)
				got[i] = fmt.Sprintf("exit %d, files %q", r.Exit, fileStates(t, dir, []string{"out"}, nil))
				if i == 1 && (strings.Contains(r.Stderr, sc.token) || strings.Contains(r.Stderr, "s3cr3t") || !strings.Contains(r.Stderr, "secret/")) {
					t.Errorf("reconf's log shows the token or a value, or not the path:\n%s", r.Stderr)
				}
			}
			if got[0] != got[1] || !strings.HasPrefix(got[0], "exit 14,") {
				t.Errorf("consul-template: %s\nreconf:          %s\nwant both: exit 14, no file", got[0], got[1])
			}
		})
	}
}
