package resource

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

const hostTOML = `[template]
src = "r.tmpl"
dest = %q
keys = ["/db"]
prefix = "/prod"
`

func tomlFor(dest string, extra string) string {
	return strings.Replace(hostTOML, "%q", `"`+dest+`"`, 1) + extra
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	must(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

func modeOf(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	must(t, err)
	return fi.Mode().Perm()
}

var prodKV = map[string]string{"/prod/db/host": "db1", "/prod/db/port": "5432", "/prod/dbx": "no", "/other/db/host": "no"}

func TestApplyRelativeKeysAndWrite(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	r := f.one(tomlFor(dest, ""), `{{range gets "/*"}}{{.Key}}{{end}}|{{range gets "/db/*"}}{{.Key}}={{.Value}};{{end}}`+"\n")
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readString(t, dest), "|/db/host=db1;/db/port=5432;\n"; got != want {
		t.Errorf("dest = %q, want %q", got, want)
	}
	if !res.Changed || !res.Written || res.Checked || res.Reloaded || modeOf(t, dest) != 0o644 {
		t.Errorf("result %+v, mode %v", res, modeOf(t, dest))
	}
	if s := f.stageFiles(); len(s) != 0 {
		t.Errorf("stage files left: %v", s)
	}
}

func TestApplyUnchangedDoesNothing(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	count := f.dest("reloads")
	r := f.one(tomlFor(dest, `reload_cmd = "echo x >> `+count+`"`+"\n"), `host={{getv "/db/host"}}`+"\n")
	if _, err := r.Apply(context.Background(), prodKV, f.opts()); err != nil {
		t.Fatal(err)
	}
	ino := inode(t, dest)
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Written || res.Reloaded {
		t.Errorf("second apply: %+v", res)
	}
	if inode(t, dest) != ino || readString(t, count) != "x\n" {
		t.Errorf("second apply rewrote or reloaded: reloads %q", readString(t, count))
	}
	// A changed mode alone is a change.
	must(t, os.Chmod(dest, 0o600))
	r.Mode, r.ModeSet = 0o644, true
	res, err = r.Apply(context.Background(), prodKV, f.opts())
	if err != nil || !res.Written || modeOf(t, dest) != 0o644 {
		t.Errorf("mode change: %+v, %v, mode %v", res, err, modeOf(t, dest))
	}
}

func TestApplyKeepsExistingMode(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	must(t, os.WriteFile(dest, []byte("old\n"), 0o600))
	must(t, os.Chmod(dest, 0o604))
	r := f.one(tomlFor(dest, ""), "new\n")
	if _, err := r.Apply(context.Background(), prodKV, f.opts()); err != nil {
		t.Fatal(err)
	}
	if m := modeOf(t, dest); m != 0o604 {
		t.Errorf("mode = %v, want the existing 0604", m)
	}
}

func TestFailingCheckLeavesDestUntouched(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	must(t, os.WriteFile(dest, []byte("old\n"), 0o644))
	ino := inode(t, dest)
	r := f.one(tomlFor(dest, `check_cmd = "test -s {{.src}} && echo bad config line 1 >&2; exit 3"`+"\n"), "new {{getv \"/db/host\"}}\n")
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if !errors.Is(err, ErrCheck) || !strings.Contains(err.Error(), "bad config line 1") || !strings.Contains(err.Error(), "r.toml") {
		t.Fatalf("err = %v, want ErrCheck naming the resource with the output", err)
	}
	if res.Written || res.Checked {
		t.Errorf("result %+v", res)
	}
	if readString(t, dest) != "old\n" || inode(t, dest) != ino {
		t.Error("dest changed after a failed check")
	}
	if s := f.stageFiles(); len(s) != 0 {
		t.Errorf("stage files left: %v", s)
	}
}

func TestModeAndOwnerSetBeforeVisible(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	check := `test "$(stat -c %a {{.src}})" = 640 && test ! -e {{.dest}} && case {{.src}} in */.app.conf*) ;; *) exit 9;; esac`
	extra := "mode = \"0640\"\n"
	if os.Geteuid() == 0 {
		check += ` && test "$(stat -c %u:%g {{.src}})" = 1234:2345`
		extra += "uid = 1234\ngid = 2345\n"
	}
	r := f.one(tomlFor(dest, extra+"check_cmd = '"+check+"'\n"), "x\n")
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if err != nil || !res.Checked || !res.Written {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if m := modeOf(t, dest); m != 0o640 {
		t.Errorf("mode = %v", m)
	}
}

func TestFailingReloadRestoresPrevious(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	must(t, os.WriteFile(dest, []byte("old\n"), 0o600))
	// The reload sees the new file, then fails.
	r := f.one(tomlFor(dest, "mode = \"0644\"\nreload_cmd = 'grep -q new {{.dest}} && echo cannot reload >&2 && exit 1'\n"), "new\n")
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if !errors.Is(err, ErrReload) || !strings.Contains(err.Error(), "cannot reload") {
		t.Fatalf("err = %v, want ErrReload with the output", err)
	}
	if !res.Written || !res.RolledBack || res.Reloaded {
		t.Errorf("result %+v", res)
	}
	if got := readString(t, dest); got != "old\n" || modeOf(t, dest) != 0o600 {
		t.Errorf("dest = %q mode %v, want the previous file and mode", got, modeOf(t, dest))
	}
	if s := f.stageFiles(); len(s) != 0 {
		t.Errorf("stage files left: %v", s)
	}

	// With no previous file, the new one is removed.
	dest2 := f.dest("fresh.conf")
	r.Dest = dest2
	res, err = r.Apply(context.Background(), prodKV, f.opts())
	if !errors.Is(err, ErrReload) || !res.RolledBack {
		t.Fatalf("fresh: %+v, %v", res, err)
	}
	if _, err := os.Stat(dest2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fresh dest still there after a failed reload: %v", err)
	}
}

func TestNoopPrintsDiffOnly(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	must(t, os.WriteFile(dest, []byte("a\nold\nc\n"), 0o644))
	ran := f.dest("ran")
	r := f.one(tomlFor(dest, "check_cmd = 'touch "+ran+"'\nreload_cmd = 'touch "+ran+"'\n"), "a\n{{getv \"/db/host\"}}\nc\n")
	o := f.opts()
	out := &bytes.Buffer{}
	o.Out, o.Noop = out, true
	res, err := r.Apply(context.Background(), prodKV, o)
	if err != nil {
		t.Fatal(err)
	}
	want := "--- " + dest + "\n+++ " + dest + " (rendered)\n@@ -1,3 +1,3 @@\n a\n-old\n+db1\n c\n"
	if out.String() != want || res.Diff != want || !res.Changed || res.Written {
		t.Errorf("noop: %+v, out:\n%s\nwant:\n%s", res, out, want)
	}
	if readString(t, dest) != "a\nold\nc\n" || len(f.stageFiles()) != 0 {
		t.Error("noop changed the folder")
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("noop ran a command")
	}
	if strings.Contains(f.log.String(), "db1") {
		t.Error("rendered content in the log")
	}
}

func TestSyncOnlyRunsNoCommands(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	r := f.one(tomlFor(dest, "check_cmd = 'exit 1'\nreload_cmd = 'exit 1'\n"), "x\n")
	o := f.opts()
	o.SyncOnly = true
	res, err := r.Apply(context.Background(), prodKV, o)
	if err != nil || !res.Written || res.Checked || res.Reloaded {
		t.Errorf("sync-only: %+v, %v", res, err)
	}
}

func TestKeepStageFile(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	r := f.one(tomlFor(dest, ""), "x\n")
	o := f.opts()
	o.KeepStageFile = true
	if _, err := r.Apply(context.Background(), prodKV, o); err != nil {
		t.Fatal(err)
	}
	s := f.stageFiles()
	if len(s) != 1 || readString(t, s[0]) != "x\n" {
		t.Errorf("stage files: %v, want one with the rendered contents", s)
	}
}

func TestRenderFailureTouchesNothing(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	must(t, os.WriteFile(dest, []byte("old\n"), 0o644))
	r := f.one(tomlFor(dest, ""), `{{getv "/db/host"}} {{getv "/db/missing"}}`)
	_, err := r.Apply(context.Background(), map[string]string{"/prod/db/host": "s3cr3t"}, f.opts())
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "/db/missing") {
		t.Fatalf("err = %v, want ErrRender naming the key", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(f.log.String(), "s3cr3t") {
		t.Error("a value reached the error or the log")
	}
	if readString(t, dest) != "old\n" || len(f.stageFiles()) != 0 {
		t.Error("a failed render touched the folder")
	}
}

func TestSecretsStayOutOfLogs(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	r := f.one(tomlFor(dest, "check_cmd = 'true'\nreload_cmd = 'true'\n"), `password={{getv "/db/host"}}`)
	if _, err := r.Apply(context.Background(), map[string]string{"/prod/db/host": "s3cr3t"}, f.opts()); err != nil {
		t.Fatal(err)
	}
	if log := f.log.String(); strings.Contains(log, "s3cr3t") || !strings.Contains(log, "updated") {
		t.Errorf("log:\n%s", log)
	}
}

func TestBlockedRenameWritesInPlace(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	must(t, os.WriteFile(dest, []byte("old\n"), 0o600))
	ino := inode(t, dest)
	renameFile = func(string, string) error { return &os.LinkError{Op: "rename", Err: syscall.EBUSY} }
	t.Cleanup(func() { renameFile = os.Rename })
	r := f.one(tomlFor(dest, "mode = \"0640\"\n"), "new\n")
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if err != nil || !res.InPlace || !res.Written {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if readString(t, dest) != "new\n" || inode(t, dest) != ino || modeOf(t, dest) != 0o640 {
		t.Errorf("dest not rewritten in place")
	}
	if !strings.Contains(f.log.String(), "in place") || len(f.stageFiles()) != 0 {
		t.Errorf("in-place write not logged or stage left: %v", f.stageFiles())
	}
	// A failed reload puts the old bytes and mode back, in place too.
	r.ReloadCmd = "exit 1"
	r.Mode = 0o644
	res, err = r.Apply(context.Background(), prodKV, f.opts())
	if !errors.Is(err, ErrReload) || !res.RolledBack || readString(t, dest) != "new\n" || modeOf(t, dest) != 0o640 || inode(t, dest) != ino {
		t.Errorf("in-place rollback: %+v, %v", res, err)
	}
}

func TestSync(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	must(t, os.WriteFile(dest, []byte("old\n"), 0o644))
	r := f.one(tomlFor(dest, ""), `{{getv "/db/host"}}`)
	down := errors.New("connection refused")
	b := &fakeBackend{err: down}
	if _, err := r.Sync(context.Background(), b, f.opts()); !errors.Is(err, down) {
		t.Fatalf("err = %v, want the backend's", err)
	}
	if readString(t, dest) != "old\n" {
		t.Error("backend error touched dest")
	}
	b.err, b.kv = nil, prodKV
	res, err := r.Sync(context.Background(), b, f.opts())
	if err != nil || !res.Written || readString(t, dest) != "db1" {
		t.Fatalf("sync = %+v, %v", res, err)
	}
	if len(b.asked) != 2 || len(b.asked[1]) != 1 || b.asked[1][0] != "/prod/db" {
		t.Errorf("backend asked for %v", b.asked)
	}
}

func TestConcurrentAppliesSameDest(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	r := f.one(tomlFor(dest, "check_cmd = 'test -s {{.src}}'\n"), `{{getv "/db/host"}}`)
	f.applyAtOnce(r, r, r, r, r, r, r, r)
	if got := readString(t, dest); strings.Trim(got, "v") != "" || got == "" || len(f.stageFiles()) != 0 {
		t.Errorf("dest %q, stage files %v", got, f.stageFiles())
	}
}
