package resource

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// symlinkFixture: out/enabled/app.conf -> ../available/app.conf (a relative link, as
// nginx's sites-enabled holds), the target holding "old\n" with mode 0600.
func symlinkFixture(t *testing.T, f *fixture) (link, target string) {
	t.Helper()
	link, target = f.dest("enabled/app.conf"), f.dest("available/app.conf")
	must(t, os.MkdirAll(filepath.Dir(link), 0o755))
	must(t, os.MkdirAll(filepath.Dir(target), 0o755))
	must(t, os.WriteFile(target, []byte("old\n"), 0o600))
	must(t, os.Symlink("../available/app.conf", link))
	return link, target
}

func assertLink(t *testing.T, link, to string) {
	t.Helper()
	fi, err := os.Lstat(link)
	must(t, err)
	if fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("%s is no longer a symlink (mode %v)", link, fi.Mode())
	}
	if got, err := os.Readlink(link); err != nil || got != to {
		t.Errorf("%s -> %q, %v; want -> %q", link, got, err, to)
	}
}

func dotFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".*"))
	must(t, err)
	return m
}

func TestApplySymlinkReplacesTarget(t *testing.T) {
	f := newFixture(t)
	link, target := symlinkFixture(t, f)
	check := f.dest("checked")
	// check_cmd records where the stage file is: beside the target, not beside the link.
	r := f.one(tomlFor(link, `check_cmd = "dirname {{.src}} > `+check+`"`+"\n"), "new {{getv \"/db/host\"}}\n")
	before := inode(t, target)
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Written || !res.Checked {
		t.Errorf("result %+v", res)
	}
	assertLink(t, link, "../available/app.conf")
	if got := readString(t, target); got != "new db1\n" {
		t.Errorf("target = %q", got)
	}
	if inode(t, target) == before {
		t.Errorf("target written in place; want an atomic rename onto it")
	}
	if got := modeOf(t, target); got != 0o600 {
		t.Errorf("target mode %v, want the target's own 0600 kept", got)
	}
	if got := strings.TrimSpace(readString(t, check)); got != filepath.Dir(target) {
		t.Errorf("stage file was in %s, want %s", got, filepath.Dir(target))
	}
	for _, d := range []string{filepath.Dir(link), filepath.Dir(target)} {
		if s := dotFiles(t, d); len(s) != 0 {
			t.Errorf("stage files left: %v", s)
		}
	}

	// Unchanged content, and mode and owner compared against the target: nothing to do.
	res, err = r.Apply(context.Background(), prodKV, f.opts())
	if err != nil || res.Changed {
		t.Errorf("second apply: %+v, %v; want unchanged", res, err)
	}
	// A mode asked for is compared against the target too, and set on it.
	r.Mode, r.ModeSet = 0o640, true
	if res, err = r.Apply(context.Background(), prodKV, f.opts()); err != nil || !res.Written {
		t.Errorf("apply with mode 0640: %+v, %v", res, err)
	}
	assertLink(t, link, "../available/app.conf")
	if got := modeOf(t, target); got != 0o640 {
		t.Errorf("target mode %v, want 0640", got)
	}
	if fi, _ := os.Lstat(link); fi.Mode().Perm() != 0o777 {
		t.Errorf("the link's own mode changed: %v", fi.Mode())
	}
}

// TestApplySymlinkChainAndRollback: a chain of links ends at the file we manage, and a failed
// reload puts the target's old content back, the links kept.
func TestApplySymlinkChainAndRollback(t *testing.T) {
	f := newFixture(t)
	link, target := symlinkFixture(t, f)
	outer := f.dest("outer.conf")
	must(t, os.Symlink(link, outer)) // absolute link to a relative link
	r := f.one(tomlFor(outer, "reload_cmd = \"exit 3\"\n"), "new\n")
	_, err := r.Apply(context.Background(), prodKV, f.opts())
	if !errors.Is(err, ErrReload) {
		t.Fatalf("err = %v, want ErrReload", err)
	}
	assertLink(t, outer, link)
	assertLink(t, link, "../available/app.conf")
	if got := readString(t, target); got != "old\n" {
		t.Errorf("target after rollback = %q, want old", got)
	}
	r.ReloadCmd = ""
	if _, err := r.Apply(context.Background(), prodKV, f.opts()); err != nil {
		t.Fatal(err)
	}
	assertLink(t, outer, link)
	if got := readString(t, target); got != "new\n" {
		t.Errorf("target = %q, want new", got)
	}
}

func TestApplyDanglingSymlink(t *testing.T) {
	f := newFixture(t)
	link := f.dest("app.conf")
	missing := f.dest("nowhere/app.conf")
	must(t, os.Symlink(missing, link))
	r := f.one(tomlFor(link, ""), "new\n")
	_, err := r.Apply(context.Background(), prodKV, f.opts())
	want := "resource r.toml: dest " + link + ": dangling symlink to " + missing + ", which does not exist"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	assertLink(t, link, missing)
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the missing target was created: %v", err)
	}
}

// TestApplySymlinkSharesTheTargetsLock: a resource writing through a link and one writing the
// file it names are one destination: their pipelines do not overlap (each check_cmd holds a
// folder as a mutex while it runs; an overlap makes mkdir fail).
func TestApplySymlinkSharesTheTargetsLock(t *testing.T) {
	f := newFixture(t)
	link, target := symlinkFixture(t, f)
	held := f.dest("held")
	check := "check_cmd = \"mkdir " + held + " && sleep 0.05 && rmdir " + held + "\"\n"
	viaLink := f.one(tomlFor(link, check), "{{getv \"/db/host\"}}\n")
	direct := *viaLink
	direct.Name, direct.Dest = "direct.toml", target
	f.applyAtOnce(viaLink, &direct, viaLink, &direct, viaLink, &direct)
	assertLink(t, link, "../available/app.conf")
}
