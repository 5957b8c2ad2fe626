package resource

import (
	"context"
	"errors"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"testing"
)

func ownerOf(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Stat(p)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("giving files away needs root")
	}
}

func TestOwnerKeptWhenUnset(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	dest := f.dest("app.conf")
	must(t, os.WriteFile(dest, []byte("old\n"), 0o644))
	must(t, os.Chown(dest, 1111, 2222))
	r := f.one(tomlFor(dest, ""), "new\n")
	if _, err := r.Apply(context.Background(), prodKV, f.opts()); err != nil {
		t.Fatal(err)
	}
	if u, g := ownerOf(t, dest); u != 1111 || g != 2222 || readString(t, dest) != "new\n" {
		t.Errorf("owner %d:%d, want the existing 1111:2222", u, g)
	}
	// An owner change alone is a change; a failed reload puts the old owner back.
	r.UID, r.GID, r.ReloadCmd = 0, 0, `test "$(stat -c %u:%g {{.dest}})" = 0:0 && exit 1`
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if !errors.Is(err, ErrReload) || !res.Changed || !res.RolledBack {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if u, g := ownerOf(t, dest); u != 1111 || g != 2222 {
		t.Errorf("owner after rollback %d:%d, want 1111:2222", u, g)
	}
	r.ReloadCmd = ""
	if res, err := r.Apply(context.Background(), prodKV, f.opts()); err != nil || !res.Written {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if u, g := ownerOf(t, dest); u != 0 || g != 0 {
		t.Errorf("owner %d:%d, want 0:0", u, g)
	}
}

func TestOwnerNames(t *testing.T) {
	f := newFixture(t)
	f.file("templates/a.tmpl", "a\n")
	f.file("conf.d/a.toml", "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\nowner = \"root\"\ngroup = \"root\"\n")
	f.file("conf.d/b.toml", "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/b\"\nowner = \"nobody\"\ngid = 7\n")
	f.file("conf.d/c.toml", "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/c\"\ngroup = \"no-such-group-reconf\"\n")
	rs, err := f.load(Defaults{})
	if !errors.Is(err, ErrInvalid) || len(rs) != 2 {
		t.Fatalf("load: %d resources, %v; want 2 and the bad group", len(rs), err)
	}
	nobody, err := user.Lookup("nobody")
	must(t, err)
	if rs[0].UID != 0 || rs[0].GID != 0 || strconv.Itoa(rs[1].UID) != nobody.Uid || rs[1].GID != 7 {
		t.Errorf("ids: a %d:%d, b %d:%d", rs[0].UID, rs[0].GID, rs[1].UID, rs[1].GID)
	}
}
