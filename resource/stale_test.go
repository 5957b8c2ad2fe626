package resource

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestIsStageName(t *testing.T) {
	dest := "/etc/app.conf"
	for name, want := range map[string]bool{
		".app.conf1": true, ".app.conf4294967295": true, ".app.conf0": true,
		".app.conf": false, ".app.conf01": false, ".app.conf4294967296": false, ".app.conf12345678901": false,
		".app.conf1a": false, "app.conf1": false, ".app.conf.1": false, ".app.con1": false, ".other1": false,
	} {
		if got := isStageName(dest, name); got != want {
			t.Errorf("isStageName(%q) = %v, want %v", name, got, want)
		}
	}
	// What writeStage makes passes, whatever the random part.
	f := newFixture(t)
	for range 20 {
		name, release, err := writeStage(f.dest("app.conf"), []byte("x"), fileState{mode: 0o644, uid: os.Geteuid(), gid: os.Getegid()}, true)
		must(t, err)
		if !isStageName(f.dest("app.conf"), filepath.Base(name)) {
			t.Errorf("writeStage made %s, which isStageName refuses", name)
		}
		release()
		must(t, os.Remove(name))
	}
}

// TestRemoveStale: only stage files of managed destinations, not held by a running reconf and
// not kept as the destination's own link, are removed, and each removal is logged.
func TestRemoveStale(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	must(t, os.WriteFile(dest, []byte("live\n"), 0o644))
	r := f.one(tomlFor(dest, ""), "x\n")
	// A symlinked destination: its stage files live beside the target.
	link, target := symlinkFixture(t, f)
	r2 := *r
	r2.Name, r2.Dest = "link.toml", link

	write := func(p string) string { must(t, os.WriteFile(p, []byte("stale"), 0o600)); return p }
	stale := []string{write(f.dest(".app.conf123")), write(f.dest(".app.conf4294967295")), write(filepath.Join(filepath.Dir(target), ".app.conf77"))}
	kept := []string{
		write(f.dest(".app.conf")), write(f.dest(".app.conf.bak")), write(f.dest(".app.conf01")), write(f.dest("app.conf5")),
		write(f.dest(".other.conf5")),                           // no resource writes other.conf
		write(filepath.Join(filepath.Dir(link), ".app.conf55")), // beside the link, not the target
	}
	// Held by a running reconf (this process).
	held, release, err := writeStage(dest, []byte("in flight"), fileState{mode: 0o644, uid: os.Geteuid(), gid: os.Getegid()}, true)
	must(t, err)
	defer release()
	kept = append(kept, held)
	// Kept by -keep-stage-file: a link to the destination itself.
	keptLink := f.dest(".app.conf999")
	must(t, os.Link(dest, keptLink))
	kept = append(kept, keptLink)

	removed := RemoveStale([]*Resource{r, &r2, r}, f.logger())
	slices.Sort(removed)
	slices.Sort(stale)
	if !slices.Equal(removed, stale) {
		t.Errorf("removed %v\nwant    %v", removed, stale)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
		if !strings.Contains(f.log.String(), `msg="removed a stage file left by an earlier run"`) || !strings.Contains(f.log.String(), "stage="+p) {
			t.Errorf("removal of %s not logged:\n%s", p, f.log.String())
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if readString(t, dest) != "live\n" || readString(t, target) != "old\n" {
		t.Errorf("a destination was touched")
	}
}
