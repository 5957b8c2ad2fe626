package resource

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
)

// fakeMounts is a MountFinder that names the bind-mounted files.
type fakeMounts struct {
	mu    sync.Mutex
	files map[string]string // path → container
	asked []string
}

func (m *fakeMounts) BindMounted(p string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked = append(m.asked, p)
	c, ok := m.files[p]
	return c, ok
}

func useMounts(t *testing.T, m MountFinder) {
	t.Helper()
	SetMountFinder(m)
	t.Cleanup(func() { SetMountFinder(nil) })
}

// readThrough reads f (an fd opened before the write, as a container's bind mount holds the
// inode) from the start.
func readThrough(t *testing.T, f *os.File) string {
	t.Helper()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	must(t, err)
	return string(b)
}

func TestWriteInPlaceKeepsInode(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("haproxy.cfg")
	old := strings.Repeat("old line\n", 500) // longer than the new content: truncated
	must(t, os.WriteFile(dest, []byte(old), 0o644))
	ino := inode(t, dest)
	held, err := os.Open(dest)
	must(t, err)
	defer held.Close()

	check := `check_cmd = 'test "{{.src}}" != "{{.dest}}" && grep -q v= {{.src}}'` + "\n"
	r := f.one(tomlFor(dest, "write = \"inplace\"\n"+check), `v={{getv "/db/host"}}`+"\n")
	if r.WriteMode != WriteInPlace {
		t.Fatalf("WriteMode = %q", r.WriteMode)
	}
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if err != nil || !res.Written || !res.InPlace || !res.Checked {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if got := readThrough(t, held); got != "v=db1\n" || inode(t, dest) != ino {
		t.Errorf("through the old fd: %q; inode %d, was %d", got, inode(t, dest), ino)
	}
	if len(f.stageFiles()) != 0 {
		t.Errorf("stage files left: %v", f.stageFiles())
	}

	// Longer content: complete, same inode.
	long := strings.Repeat("x", 1<<20)
	res, err = r.Apply(context.Background(), map[string]string{"/prod/db/host": long}, f.opts())
	if err != nil || !res.InPlace {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if got := readThrough(t, held); got != "v="+long+"\n" || inode(t, dest) != ino {
		t.Errorf("long content: %d bytes, want %d; inode kept %v", len(got), len(long)+3, inode(t, dest) == ino)
	}

	// A failed check leaves the destination untouched.
	r2 := f.one(tomlFor(dest, "write = \"inplace\"\ncheck_cmd = 'false'\n"), "bad\n")
	if _, err := r2.Apply(context.Background(), prodKV, f.opts()); !errors.Is(err, ErrCheck) {
		t.Fatalf("err = %v, want ErrCheck", err)
	}
	if got := readThrough(t, held); got != "v="+long+"\n" || len(f.stageFiles()) != 0 {
		t.Errorf("failed check touched dest (%d bytes) or left %v", len(got), f.stageFiles())
	}

	// A failed reload puts the previous bytes back, in place.
	r.ReloadCmd = "exit 3"
	res, err = r.Apply(context.Background(), map[string]string{"/prod/db/host": "db2"}, f.opts())
	if !errors.Is(err, ErrReload) || !res.RolledBack || !res.InPlace {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if got := readThrough(t, held); got != "v="+long+"\n" || inode(t, dest) != ino {
		t.Errorf("rollback: %d bytes; inode kept %v", len(got), inode(t, dest) == ino)
	}
	if n := strings.Count(f.log.String(), `write = \"inplace\"`); n != 1 {
		t.Errorf("reason logged %d times, want once:\n%s", n, f.log.String())
	}
}

func TestWriteAutoAsksMountFinder(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("web.conf")
	must(t, os.WriteFile(dest, []byte("old\n"), 0o644))
	m := &fakeMounts{files: map[string]string{}}
	useMounts(t, m)
	r := f.one(tomlFor(dest, ""), `{{getv "/db/host"}}`+"\n")

	// Not mounted: renamed (new inode).
	ino := inode(t, dest)
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if err != nil || res.InPlace || inode(t, dest) == ino {
		t.Fatalf("unmounted dest: %+v, %v, inode kept %v", res, err, inode(t, dest) == ino)
	}
	if len(m.asked) != 1 || m.asked[0] != dest {
		t.Errorf("finder asked %v, want [%s]", m.asked, dest)
	}

	// Mounted: in place, and the log says why once.
	m.files[dest] = "web-1"
	ino = inode(t, dest)
	for _, v := range []string{"a", "b", "c"} {
		res, err := r.Apply(context.Background(), map[string]string{"/prod/db/host": v}, f.opts())
		if err != nil || !res.InPlace || readString(t, dest) != v+"\n" || inode(t, dest) != ino {
			t.Fatalf("mounted dest, %s: %+v, %v", v, res, err)
		}
	}
	if n := strings.Count(f.log.String(), "bind-mounts this file"); n != 1 || !strings.Contains(f.log.String(), "web-1") {
		t.Errorf("reason logged %d times, want once with the container:\n%s", n, f.log.String())
	}

	// write = "rename" wins over the finder.
	r2 := f.one(tomlFor(dest, "write = \"rename\"\n"), "renamed\n")
	res, err = r2.Apply(context.Background(), prodKV, f.opts())
	if err != nil || res.InPlace || inode(t, dest) == ino {
		t.Errorf("write = rename: %+v, %v, inode kept %v", res, err, inode(t, dest) == ino)
	}
}

func TestWriteAutoThroughSymlinkAsksForTarget(t *testing.T) {
	f := newFixture(t)
	realPath := f.dest("realPath.cfg")
	link := f.dest("link.cfg")
	must(t, os.WriteFile(realPath, []byte("old\n"), 0o644))
	must(t, os.Symlink(realPath, link))
	m := &fakeMounts{files: map[string]string{realPath: "proxy"}}
	useMounts(t, m)
	ino := inode(t, realPath)
	r := f.one(tomlFor(link, ""), "new\n")
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if err != nil || !res.InPlace || inode(t, realPath) != ino || readString(t, realPath) != "new\n" {
		t.Fatalf("apply = %+v, %v; asked %v", res, err, m.asked)
	}
}

func TestLoadWriteMode(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		toml string
		want WriteMode
		bad  bool
	}{
		{"", "", false},
		{`write = "auto"`, WriteAuto, false},
		{`write = "rename"`, WriteRename, false},
		{`write = "inplace"`, WriteInPlace, false},
		{`write = "in-place"`, "", true},
		{`write = 1`, "", true},
	} {
		f.file("conf.d/w.toml", tomlFor(f.dest("w.conf"), tc.toml+"\n"))
		f.file("templates/r.tmpl", "x")
		rs, err := f.load(Defaults{ConfDir: f.confDir})
		switch {
		case tc.bad && (err == nil || !strings.Contains(err.Error(), "write must be")):
			t.Errorf("%s: err = %v, want one naming write", tc.toml, err)
		case !tc.bad && (err != nil || len(rs) != 1 || rs[0].WriteMode != tc.want):
			t.Errorf("%s: %v, %v", tc.toml, rs, err)
		}
	}
}
