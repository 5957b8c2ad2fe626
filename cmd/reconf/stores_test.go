package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

func TestNamedStoresConfig(t *testing.T) {
	file := writeFile(t, "reconf.toml", `backend = "etcd"
nodes = ["127.0.0.1:2379"]

[backends.secrets]
backend = "vault"
nodes = ["http://127.0.0.1:8200"]
auth_type = "app-role"
role_id = "r-1"
secret_id = "s3cret-id-value"

[backends.files]
backend = "file"
file = ["/etc/app/data.yaml"]

[backends.fleet]
backend = "etcd"
nodes = ["10.0.0.1:2379", "10.0.0.2:2379"]
probe_interval = "10s"
`)
	c, err := resolve([]string{"-config-file", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.storeNames(), ","); got != "files,fleet,secrets" {
		t.Fatalf("stores %q", got)
	}
	s := c.stores["secrets"].opts
	if s.Backend != "vault" || s.AuthType != "app-role" || s.RoleID != "r-1" || s.SecretID != "s3cret-id-value" ||
		strings.Join(s.Nodes.values(), ",") != "http://127.0.0.1:8200" {
		t.Errorf("secrets: %+v", s)
	}
	if f := c.stores["files"].opts; f.Backend != "file" || strings.Join(f.Files.values(), ",") != "/etc/app/data.yaml" || len(f.Nodes.values()) != 0 {
		t.Errorf("files: %+v", f)
	}
	if o := backendOptions(&c.stores["fleet"].opts); o.ProbeInterval != 10*time.Second {
		t.Errorf("fleet: probe interval %v, want 10s", o.ProbeInterval)
	}
	if o := backendOptions(&c.opts); o.ProbeInterval != 0 {
		t.Errorf("global probe interval %v, want 0 (the store's default)", o.ProbeInterval)
	}
	if c.opts.Backend != "etcd" || c.opts.SecretID != "" {
		t.Errorf("a named store leaked into the global settings: %+v", c.opts)
	}

	for _, bad := range []struct{ body, want string }{
		{"[backends.secrets]\nbackend = \"vault\"\ninterval = 5\n", `reconf.toml:3: [backends.secrets]: "interval" is not a backend setting`},
		{"[backends.secrets]\nnodes = [\"x\"]\n", `reconf.toml:1: [backends.secrets]: backend is required`},
		{"[backends.default]\nbackend = \"file\"\n", `reconf.toml:1: [backends.default]: "default" is the global backend's name`},
		{"[backends.v]\nbackend = \"vault\"\nsecret_id = 12345678\n", `reconf.toml:3: [backends.v]: key "secret_id": want a string, got an integer`},
		{"backends = 3\n", `reconf.toml:1: backends: want [backends.NAME] tables`},
	} {
		_, err := resolve([]string{"-config-file", writeFile(t, "reconf.toml", bad.body)}, env(nil))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: err %v, want …%s…", bad.body, err, bad.want)
		}
		if err != nil && strings.Contains(err.Error(), "12345678") {
			t.Errorf("a secret in the error: %v", err)
		}
	}
}

// storesSetup is a confdir with one resource on the global etcd and one on a named file
// store, and the reconf.toml that names them.
type storesSetup struct {
	dir, cfg, data   string
	kvDest, fileDest string
}

func newStoresSetup(t *testing.T, etcdAddr, resourceBackend string) storesSetup {
	tmp := t.TempDir()
	s := storesSetup{dir: filepath.Join(tmp, "etc"), data: filepath.Join(tmp, "data.yaml"),
		kvDest: filepath.Join(tmp, "kv.conf"), fileDest: filepath.Join(tmp, "file.conf")}
	for name, body := range map[string]string{
		"templates/kv.tmpl":   `db={{getv "/app/db"}}` + "\n",
		"templates/file.tmpl": `db={{getv "/app/db"}}` + "\n",
		"conf.d/kv.toml":      fmt.Sprintf("[template]\nsrc = \"kv.tmpl\"\ndest = %q\nkeys = [\"/app\"]\n", s.kvDest),
		"conf.d/file.toml": fmt.Sprintf("[template]\nsrc = \"file.tmpl\"\ndest = %q\nkeys = [\"/app\"]\nbackend = %q\n",
			s.fileDest, resourceBackend),
	} {
		p := filepath.Join(s.dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(body), 0o644))
	}
	s.cfg = filepath.Join(tmp, "reconf.toml")
	must(t, os.WriteFile(s.cfg, []byte(fmt.Sprintf("backend = \"etcd\"\nnodes = [%q]\nconfdir = %q\n\n[backends.files]\nbackend = \"file\"\nfile = [%q]\n",
		etcdAddr, s.dir, s.data)), 0o644))
	return s
}

// One reconf, two stores: each resource renders from its own (real etcd, the file backend),
// in -onetime and -watch, and a change in each store reaches its own file only.
func TestNamedStoreEndToEnd(t *testing.T) {
	srv := testservers.Etcd(t)
	put := etcdPutter(t, srv.Addr)
	put("/app/db", "etcd-1")
	s := newStoresSetup(t, srv.Addr, "files")
	must(t, os.WriteFile(s.data, []byte("app:\n  db: file-1\n"), 0o644))

	r := runBin(t, nil, "-config-file", s.cfg, "-onetime")
	if r.code != 0 {
		t.Fatalf("-onetime: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if got := readFile(t, s.kvDest) + readFile(t, s.fileDest); got != "db=etcd-1\ndb=file-1\n" {
		t.Fatalf("-onetime rendered %q", got)
	}

	p := startBin(t, bin, nil, "-config-file", s.cfg, "-watch")
	put("/app/db", "etcd-2")
	waitFor(t, "the etcd change in kv.conf", 30*time.Second, func() bool {
		b, _ := os.ReadFile(s.kvDest)
		return string(b) == "db=etcd-2\n"
	})
	writeTo(t, s.data, "app:\n  db: file-2\n")
	waitFor(t, "the file change in file.conf", 30*time.Second, func() bool {
		b, _ := os.ReadFile(s.fileDest)
		return string(b) == "db=file-2\n"
	})
	if got := readFile(t, s.kvDest); got != "db=etcd-2\n" {
		t.Errorf("kv.conf = %q after the file store changed", got)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}
	logs := p.stderr.String()
	for _, want := range []string{`msg="watch started" watch=/app`, `msg="watch started" backend=files watch=/app`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

// A resource naming a backend that reconf.toml does not define fails to load, naming its
// file, the name and the known ones.
func TestNamedStoreUnknown(t *testing.T) {
	s := newStoresSetup(t, "127.0.0.1:1", "file")
	must(t, os.WriteFile(s.data, []byte("app:\n  db: x\n"), 0o644))
	r := runBin(t, nil, "-config-file", s.cfg, "-onetime", "-backend", "file", "-file", s.data)
	want := filepath.Join(s.dir, "conf.d", "file.toml") + `: invalid template resource: line 5: template.backend: unknown backend \"file\" (known: default, files)`
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("exit %d, want 1 and %s; stderr:\n%s", r.code, want, r.stderr)
	}
}

// A store configured as the global backend, or as another store, is that backend.
func TestNamedStoresShareBackends(t *testing.T) {
	file := writeFile(t, "reconf.toml", `backend = "file"
file = ["/a.yaml"]
services_prefix = "/svc"

[backends.same]
backend = "file"
file = ["/a.yaml"]

[backends.other]
backend = "file"
file = ["/b.yaml"]

[backends.other2]
backend = "file"
file = ["/b.yaml"]
`)
	c, err := resolve([]string{"-config-file", file}, env(nil))
	must(t, err)
	def, err := backends.New(c.opts.Backend, backendOptions(&c.opts))
	must(t, err)
	stores, closeStores, err := openStores(c, def, slog.New(slog.DiscardHandler))
	must(t, err)
	defer closeStores()
	if stores["same"].Backend != def {
		t.Error("[backends.same] did not share the global backend")
	}
	if stores["other"].Backend == def || stores["other2"].Backend != stores["other"].Backend {
		t.Error("[backends.other] and [backends.other2] are not one backend apart from the global one")
	}
}
