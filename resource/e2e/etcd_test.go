package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/etcd"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/resource"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSyncFromEtcd renders from a real etcd with a prefix, re-renders after a change (deleted
// keys disappear), and leaves the file alone while etcd is down.
func TestSyncFromEtcd(t *testing.T) {
	srv := testservers.Etcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + srv.Addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for k, v := range map[string]string{"/prod/db/host": "db1", "/prod/db/port": "5432", "/prod/dbx/host": "no", "/staging/db/host": "no"} {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	dest := filepath.Join(dir, "out", "db.conf")
	write(t, filepath.Join(dir, "conf.d", "db.toml"), "[template]\nsrc = \"db.tmpl\"\ndest = \""+dest+"\"\nprefix = \"prod\"\nkeys = [\"/db\"]\nmode = \"0640\"\n")
	write(t, filepath.Join(dir, "templates", "db.tmpl"), "{{range gets \"/db/*\"}}{{base .Key}}={{.Value}}\n{{end}}")
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		t.Fatal(err)
	}
	rs, err := resource.Load(resource.Defaults{ConfDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b, err := backends.New("etcd", backends.Options{Nodes: []string{"http://" + srv.Addr}, DialTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	res, err := rs[0].Sync(ctx, b, resource.SyncOptions{})
	if err != nil || !res.Written {
		t.Fatalf("sync = %+v, %v", res, err)
	}
	if got, want := read(t, dest), "host=db1\nport=5432\n"; got != want {
		t.Errorf("dest = %q, want %q", got, want)
	}

	if _, err := cli.Delete(ctx, "/prod/db/port"); err != nil {
		t.Fatal(err)
	}
	if res, err = rs[0].Sync(ctx, b, resource.SyncOptions{}); err != nil || !res.Written {
		t.Fatalf("sync after delete = %+v, %v", res, err)
	}
	if got, want := read(t, dest), "host=db1\n"; got != want {
		t.Errorf("dest = %q, want %q", got, want)
	}

	srv.Stop(t)
	res, err = rs[0].Sync(ctx, b, resource.SyncOptions{})
	if err == nil || res.Written || !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("sync with etcd down = %+v, %v; want ErrUnavailable and nothing written", res, err)
	}
	if got := read(t, dest); got != "host=db1\n" {
		t.Errorf("dest changed while etcd was down: %q", got)
	}
}
