package resource

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/reconf/reconf/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "argv" { // the command table's helper program
		os.Exit(argvMain(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// fixture is a confdir in a temp folder, with an output folder for destinations.
type fixture struct {
	t       testing.TB
	confDir string
	outDir  string
	log     *syncBuffer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{t: t, confDir: filepath.Join(root, "etc"), outDir: filepath.Join(root, "out"), log: &syncBuffer{}}
	for _, d := range []string{"conf.d", "templates"} {
		must(t, os.MkdirAll(filepath.Join(f.confDir, d), 0o755))
	}
	must(t, os.MkdirAll(f.outDir, 0o755))
	return f
}

func (f *fixture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (f *fixture) file(rel, content string) string {
	f.t.Helper()
	p := filepath.Join(f.confDir, rel)
	must(f.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(f.t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func (f *fixture) dest(name string) string { return filepath.Join(f.outDir, name) }

// load loads the fixture with d (ConfDir and Log filled in).
func (f *fixture) load(d Defaults) ([]*Resource, error) {
	d.ConfDir = f.confDir
	d.Log = f.logger()
	return Load(d)
}

// one writes a resource file and its template, loads it and returns the only resource.
func (f *fixture) one(toml, tmpl string) *Resource {
	f.t.Helper()
	f.file("conf.d/r.toml", toml)
	f.file("templates/r.tmpl", tmpl)
	rs, err := f.load(Defaults{})
	if err != nil {
		f.t.Fatalf("load: %v", err)
	}
	if len(rs) != 1 {
		f.t.Fatalf("load: got %d resources, want 1", len(rs))
	}
	return rs[0]
}

func (f *fixture) opts() SyncOptions { return SyncOptions{Log: f.logger(), Out: &bytes.Buffer{}} }

// stageFiles lists the stage files left in the output folder.
func (f *fixture) stageFiles() []string {
	m, err := filepath.Glob(filepath.Join(f.outDir, ".*"))
	must(f.t, err)
	return m
}

// applyAtOnce applies each of rs at the same time, the i-th with /prod/db/host set to i+1
// v's, and fails the test with each error.
func (f *fixture) applyAtOnce(rs ...*Resource) {
	f.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(rs))
	for i, r := range rs {
		wg.Go(func() {
			kv := map[string]string{"/prod/db/host": strings.Repeat("v", i+1)}
			_, err := r.Apply(context.Background(), kv, f.opts())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			f.t.Error(err)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readString(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b)
}

// eventually is testutil.Eventually: poll until cond holds, fail after d.
var eventually = testutil.Eventually

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testutil.SyncBuffer

// fakeBackend answers Get from a map (filtered by path), or fails.
type fakeBackend struct {
	kv    map[string]string
	err   error
	asked [][]string
}

func (b *fakeBackend) Get(_ context.Context, prefixes []string) (map[string]string, error) {
	b.asked = append(b.asked, prefixes)
	if b.err != nil {
		return nil, b.err
	}
	out := map[string]string{}
	for k, v := range b.kv {
		for _, p := range prefixes {
			if k == p || strings.HasPrefix(k, strings.TrimSuffix(p, "/")+"/") {
				out[k] = v
			}
		}
	}
	return out, nil
}

func (b *fakeBackend) Close() error { return nil }
