package ctres_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/file"
	"github.com/reconf/reconf/discovery"
	"github.com/reconf/reconf/resource"
	"github.com/reconf/reconf/resource/ctres"
	"github.com/reconf/reconf/template/ct"
)

// fixture is a folder with a YAML data file read by the file backend, and a Set over it.
type fixture struct {
	t    *testing.T
	dir  string
	data string
	b    backends.Backend
	set  *ctres.Set
	out  bytes.Buffer
	errb bytes.Buffer
}

func newFixture(t *testing.T, data string) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	f.data = filepath.Join(f.dir, "data.yaml")
	f.setData(data)
	b, err := backends.New("file", backends.Options{Files: []string{f.data}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	f.b = b
	f.set = &ctres.Set{
		Store: ct.Store{Services: discovery.New(b, discovery.Config{})},
		Out:   &f.out, Err: &f.errb,
	}
	return f
}

func (f *fixture) setData(s string) {
	f.t.Helper()
	if err := os.WriteFile(f.data, []byte(s), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// path is name inside the fixture's folder.
func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

// add appends a template with contents written to dest (relative to the folder); cmd, when
// not "", is its command (run under sh -c in the folder's context through absolute paths).
func (f *fixture) add(contents, dest, cmd string) *ctres.Template {
	f.t.Helper()
	d := f.path(dest)
	tt, err := ct.New(ct.Config{Contents: contents, Destination: d})
	if err != nil {
		f.t.Fatal(err)
	}
	tpl := &ctres.Template{
		T:              tt,
		Res:            &resource.Resource{Name: dest, Dest: d, UID: -1, GID: -1},
		CommandTimeout: 10 * time.Second,
		Display:        `"(dynamic)" => "` + d + `"`,
	}
	if cmd != "" {
		tpl.Command = []string{cmd}
	}
	f.set.Templates = append(f.set.Templates, tpl)
	return tpl
}

func (f *fixture) sync() (resource.Result, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.set.Sync(ctx, f.b, resource.SyncOptions{})
}

// read is a file's contents, or "<absent>".
func (f *fixture) read(name string) string {
	f.t.Helper()
	b, err := os.ReadFile(f.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return "<absent>"
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) want(name, contents string) {
	f.t.Helper()
	if got := f.read(name); got != contents {
		f.t.Errorf("%s = %q, want %q", name, got, contents)
	}
}

// logLines is the command log (one line per command run), "" lines dropped.
func (f *fixture) logLines() []string {
	f.t.Helper()
	s := f.read("log")
	if s == "<absent>" {
		return nil
	}
	return strings.Fields(s)
}

// logCmd is a command appending word to the fixture's log.
func (f *fixture) logCmd(word string) string {
	return "echo " + word + " >> " + f.path("log")
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

func TestRendersInOrder(t *testing.T) {
	f := newFixture(t, "app:\n  name: web\n  port: 80\n")
	// Each command records which destination files exist when it runs: all of them, because
	// the commands run after the whole pass; and the templates are written in order.
	f.add(`name={{ key "app/name" }}`, "a", "")
	f.add(`port={{ key "app/port" }}`, "b", "")
	f.add(`both={{ key "app/name" }}:{{ key "app/port" }}`, "c", "")
	res, err := f.sync()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.Written {
		t.Errorf("result %+v: want Changed and Written", res)
	}
	f.want("a", "name=web")
	f.want("b", "port=80")
	f.want("c", "both=web:80")
	ma, mb, mc := mtime(t, f.path("a")), mtime(t, f.path("b")), mtime(t, f.path("c"))
	if ma.After(mb) || mb.After(mc) {
		t.Errorf("written out of order: a %v b %v c %v", ma, mb, mc)
	}
	for _, n := range []string{"a", "b", "c"} {
		if m := mode(t, f.path(n)); m.Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", n, m)
		}
	}
	// Nothing changed: a second pass writes nothing.
	res, err = f.sync()
	if err != nil || res.Changed || res.Written {
		t.Errorf("second pass = %+v, %v; want nothing changed", res, err)
	}
}

func mtime(t *testing.T, path string) time.Time {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}

func TestCommandsOncePerPassInFirstAppearanceOrder(t *testing.T) {
	f := newFixture(t, "app:\n  x: 1\n  y: 1\n  z: 1\n")
	f.add(`x={{ key "app/x" }}`, "x", f.logCmd("first"))
	// The first command checks that the last template was already written when it runs.
	f.add(`y={{ key "app/y" }}`, "y", f.logCmd("second"))
	f.add(`z={{ key "app/z" }}`, "z", f.logCmd("first"))
	f.set.Templates[0].Command = []string{"test -f " + f.path("z") + " && " + f.logCmd("first")}
	f.set.Templates[2].Command = f.set.Templates[0].Command
	res, err := f.sync()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reloaded {
		t.Errorf("result %+v: want Reloaded", res)
	}
	if got := f.logLines(); !slices.Equal(got, []string{"first", "second"}) {
		t.Errorf("commands ran %q, want [first second] (each once, after the pass, first-appearance order)", got)
	}

	// Nothing changed: no command runs.
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	if got := f.logLines(); len(got) != 2 {
		t.Errorf("commands ran on an unchanged pass: %q", got)
	}

	// Only z changes: only z's command runs (the one x shares), once.
	f.setData("app:\n  x: 1\n  y: 1\n  z: 2\n")
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	if got := f.logLines(); !slices.Equal(got, []string{"first", "second", "first"}) {
		t.Errorf("after z changed, commands ran %q, want [first second first]", got)
	}

	// Only y changes: only y's command.
	f.setData("app:\n  x: 1\n  y: 2\n  z: 2\n")
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	if got := f.logLines(); !slices.Equal(got, []string{"first", "second", "first", "second"}) {
		t.Errorf("after y changed, commands ran %q, want [first second first second]", got)
	}
}

func TestFailingCommandRollsBackItsFiles(t *testing.T) {
	f := newFixture(t, "app:\n  v: new\n")
	// a exists (0600, old bytes); b does not; both share the failing command. c has its own
	// command, which succeeds: c stays written.
	if err := os.WriteFile(f.path("a"), []byte("old a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.path("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.add(`a={{ key "app/v" }}`, "a", "exit 3")
	f.add(`b={{ key "app/v" }}`, "b", "exit 3")
	f.add(`c={{ key "app/v" }}`, "c", f.logCmd("c"))
	res, err := f.sync()
	if !errors.Is(err, ctres.ErrCommand) {
		t.Fatalf("Sync = %v, want ErrCommand", err)
	}
	if errors.Is(err, ctres.ErrTemplate) {
		t.Errorf("a command error wraps ErrTemplate: %v", err)
	}
	if !strings.Contains(err.Error(), "exit 3") {
		t.Errorf("error %q does not name the command", err)
	}
	if !res.RolledBack {
		t.Errorf("result %+v: want RolledBack", res)
	}
	f.want("a", "old a\n")
	if m := mode(t, f.path("a")); m != 0o600 {
		t.Errorf("a's mode after rollback %v, want 0600", m)
	}
	f.want("b", "<absent>")
	f.want("c", "c=new")
	if got := f.logLines(); !slices.Equal(got, []string{"c"}) {
		t.Errorf("commands ran %q, want [c]", got)
	}

	// The next pass tries again (the files differ again), and fails again the same way.
	if _, err := f.sync(); !errors.Is(err, ctres.ErrCommand) {
		t.Fatalf("second Sync = %v, want ErrCommand", err)
	}
	f.want("a", "old a\n")
	f.want("b", "<absent>")
}

func TestTemplateErrorStopsThePass(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	f.add(`first={{ key "app/v" }}`, "first", f.logCmd("first"))
	f.add(`{{ parseInt "not a number" }}`, "bad", f.logCmd("bad"))
	f.add(`last={{ key "app/v" }}`, "last", f.logCmd("last"))
	_, err := f.sync()
	if !errors.Is(err, ctres.ErrTemplate) {
		t.Fatalf("Sync = %v, want ErrTemplate", err)
	}
	if errors.Is(err, resource.ErrWaiting) || errors.Is(err, ctres.ErrCommand) {
		t.Errorf("template error also wraps ErrWaiting/ErrCommand: %v", err)
	}
	if !strings.Contains(err.Error(), f.path("bad")) {
		t.Errorf("error %q does not name the template", err)
	}
	f.want("first", "first=1")
	f.want("bad", "<absent>")
	f.want("last", "<absent>")
	if got := f.logLines(); len(got) != 0 {
		t.Errorf("commands ran after a template error: %q", got)
	}
}

func TestMissingKeyWaits(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	f.add(`a={{ key "app/v" }}`, "a", f.logCmd("a"))
	f.add(`b={{ key "app/missing" }}`, "b", f.logCmd("b"))
	f.add(`c={{ key "app/v" }}`, "c", "")
	res, err := f.sync()
	if !errors.Is(err, resource.ErrWaiting) {
		t.Fatalf("Sync = %v, want resource.ErrWaiting", err)
	}
	if errors.Is(err, ctres.ErrTemplate) || errors.Is(err, ctres.ErrCommand) {
		t.Errorf("waiting wraps ErrTemplate/ErrCommand: %v", err)
	}
	if !strings.Contains(err.Error(), "app/missing") {
		t.Errorf("error %q does not name the missing key", err)
	}
	if !res.Written {
		t.Errorf("result %+v: the other templates were written", res)
	}
	f.want("a", "a=1")
	f.want("b", "<absent>")
	f.want("c", "c=1")
	if got := f.logLines(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("commands ran %q, want [a]", got)
	}

	f.setData("app:\n  v: 1\n  missing: here\n")
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	f.want("b", "b=here")
	if got := f.logLines(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("commands ran %q, want [a b]", got)
	}
}

func TestDryPrintsChangedFilesOnly(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	if err := os.WriteFile(f.path("same"), []byte("same=1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path("old"), []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.set.Dry = true
	f.add(`same={{ key "app/v" }}`, "same", f.logCmd("same"))
	f.add(`changed={{ key "app/v" }}`+"\n", "old", f.logCmd("old"))
	f.add(`new={{ key "app/v" }}`, "new", f.logCmd("new"))
	res, err := f.sync()
	if err != nil {
		t.Fatal(err)
	}
	want := "> " + f.path("old") + "\nchanged=1\n" + "> " + f.path("new") + "\nnew=1"
	if got := f.out.String(); got != want {
		t.Errorf("dry output %q, want %q", got, want)
	}
	if res.Written {
		t.Errorf("result %+v: Written in dry mode", res)
	}
	f.want("same", "same=1")
	f.want("old", "old contents")
	f.want("new", "<absent>")
	if got := f.logLines(); len(got) != 0 {
		t.Errorf("commands ran in dry mode: %q", got)
	}
}

func TestOnceSkipsRenderedTemplates(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	f.set.Once = true
	f.add(`a={{ key "app/v" }}`, "a", f.logCmd("a"))
	f.add(`b={{ key "app/w" }}`, "b", f.logCmd("b"))
	if _, err := f.sync(); !errors.Is(err, resource.ErrWaiting) {
		t.Fatalf("Sync = %v, want ErrWaiting", err)
	}
	f.want("a", "a=1")
	f.want("b", "<absent>")

	// v changed and w appeared: a rendered already and is left alone; b renders now.
	f.setData("app:\n  v: 2\n  w: 2\n")
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	f.want("a", "a=1")
	f.want("b", "b=2")
	if got := f.logLines(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("commands ran %q, want [a b]", got)
	}
	// Everything rendered: later passes touch nothing.
	f.setData("app:\n  v: 3\n  w: 3\n")
	res, err := f.sync()
	if err != nil || res.Changed {
		t.Fatalf("third pass = %+v, %v; want nothing", res, err)
	}
	f.want("a", "a=1")
	f.want("b", "b=2")
}

func TestDepsReflectTheLastPass(t *testing.T) {
	f := newFixture(t, "app:\n  x: 1\nb:\n  y: 2\n")
	f.add(`{{ if keyExists "flag" }}{{ key "app/x" }}{{ else }}{{ key "b/y" }}{{ end }}`, "one", "")
	f.add(`{{ if keyExists "svc" }}{{ range services }}{{ .Name }}{{ end }}{{ end }}{{ range ls "list/" }}{{ .Key }}{{ end }}`, "two", "")
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	p1 := f.set.Prefixes()
	t.Logf("first pass prefixes %q", p1)
	if !slices.Contains(p1, "/b/y") || slices.Contains(p1, "/app/x") || !slices.Contains(p1, "/flag") || !slices.Contains(p1, "/svc") {
		t.Errorf("first pass prefixes %q: want /flag, /b/y, /svc, not /app/x", p1)
	}
	if !slices.ContainsFunc(p1, func(p string) bool { return strings.HasPrefix(p, "/list") }) {
		t.Errorf("first pass prefixes %q lack /list", p1)
	}
	if f.set.UsesServices() {
		t.Error("first pass: UsesServices, but no template read services")
	}

	f.setData("app:\n  x: 1\nb:\n  y: 2\nflag: on\nsvc: on\n")
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	p2 := f.set.Prefixes()
	t.Logf("second pass prefixes %q", p2)
	if !slices.Contains(p2, "/app/x") || slices.Contains(p2, "/b/y") {
		t.Errorf("second pass prefixes %q: want /app/x, not /b/y", p2)
	}
	if !f.set.UsesServices() {
		t.Error("second pass read services: UsesServices false")
	}

	// Back: the services dependency goes away again.
	f.setData("app:\n  x: 1\nb:\n  y: 2\n")
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	if f.set.UsesServices() {
		t.Error("third pass: UsesServices still true")
	}
	if p3 := f.set.Prefixes(); slices.Contains(p3, "/app/x") {
		t.Errorf("third pass prefixes %q still hold /app/x", p3)
	}
}

func TestCreateDestDirs(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	f.add(`v={{ key "app/v" }}`, "no/such/dir/out", "")
	if _, err := f.sync(); err == nil || errors.Is(err, resource.ErrWaiting) {
		t.Fatalf("Sync into a missing folder without create_dest_dirs = %v, want an error", err)
	}
	f.want("no/such/dir/out", "<absent>")

	f.set.Templates[0].CreateDestDirs = true
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	f.want("no/such/dir/out", "v=1")
	for _, d := range []string{"no", "no/such", "no/such/dir"} {
		if m := mode(t, f.path(d)); !m.IsDir() || m.Perm() != 0o755&^umask() {
			t.Errorf("%s mode %v, want a 0755 folder", d, m)
		}
	}
}

// umask is the process's umask, read without changing it for long.
func umask() os.FileMode {
	dir, err := os.MkdirTemp("", "umask")
	if err != nil {
		return 0o022
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "d")
	if err := os.Mkdir(p, 0o777); err != nil {
		return 0o022
	}
	st, err := os.Stat(p)
	if err != nil {
		return 0o022
	}
	return 0o777 &^ st.Mode().Perm()
}

func TestBackupKeepsThePreviousFile(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	if err := os.WriteFile(f.path("out"), []byte("previous\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl := f.add(`v={{ key "app/v" }}`, "out", "")
	tpl.Backup = true
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	f.want("out", "v=1")
	f.want("out.bak", "previous\n")

	f.setData("app:\n  v: 2\n")
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	f.want("out", "v=2")
	f.want("out.bak", "v=1")

	// No change: the backup stays as it is.
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	f.want("out.bak", "v=1")
}

func TestBackupOfANewFile(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	f.add(`v={{ key "app/v" }}`, "out", "").Backup = true
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	f.want("out", "v=1")
	f.want("out.bak", "<absent>") // nothing to back up (consul-template: nothing to link)
}

func TestCheckCommandFailingLeavesDestUntouched(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	if err := os.WriteFile(f.path("out"), []byte("keep me\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.path("out"), 0o640); err != nil {
		t.Fatal(err)
	}
	tpl := f.add(`v={{ key "app/v" }}`, "out", f.logCmd("cmd"))
	tpl.Res.CheckCmd = "grep -q v=2 {{.src}}"
	tpl.Res.CheckTimeout = 10 * time.Second
	_, err := f.sync()
	if !errors.Is(err, resource.ErrCheck) {
		t.Fatalf("Sync = %v, want resource.ErrCheck", err)
	}
	if errors.Is(err, ctres.ErrCommand) {
		t.Errorf("check failure wraps ErrCommand: %v", err)
	}
	f.want("out", "keep me\n")
	if m := mode(t, f.path("out")); m != 0o640 {
		t.Errorf("mode %v, want 0640", m)
	}
	if got := f.logLines(); len(got) != 0 {
		t.Errorf("command ran after a failed check: %q", got)
	}
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".out") {
			t.Errorf("stage file %s left behind", e.Name())
		}
	}

	// A check that passes: the file is written and the command runs.
	f.setData("app:\n  v: 2\n")
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	f.want("out", "v=2")
	if got := f.logLines(); !slices.Equal(got, []string{"cmd"}) {
		t.Errorf("commands ran %q, want [cmd]", got)
	}
}

func TestCommandOutputAndEnv(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	f.set.CommandEnv = []string{"CONSUL_HTTP_ADDR=127.0.0.1:1"}
	f.add(`v={{ key "app/v" }}`, "out", `echo "out:$CONSUL_HTTP_ADDR"; echo err >&2`)
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	if got := f.out.String(); got != "out:127.0.0.1:1\n" {
		t.Errorf("command stdout %q", got)
	}
	if got := f.errb.String(); got != "err\n" {
		t.Errorf("command stderr %q", got)
	}
}

// consul-template's backup is a hard link to the previous file: same bytes, same mode.
func TestBackupKeepsThePreviousMode(t *testing.T) {
	f := newFixture(t, "app:\n  v: 1\n")
	if err := os.WriteFile(f.path("out"), []byte("previous\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.path("out"), 0o600); err != nil {
		t.Fatal(err)
	}
	tpl := f.add(`v={{ key "app/v" }}`, "out", "")
	tpl.Backup = true
	tpl.Res.Mode, tpl.Res.ModeSet = 0o640, true
	if _, err := f.sync(); err != nil {
		t.Fatal(err)
	}
	f.want("out", "v=1")
	if m := mode(t, f.path("out")); m != 0o640 {
		t.Errorf("out mode %v, want 0640", m)
	}
	f.want("out.bak", "previous\n")
	if m := mode(t, f.path("out.bak")); m != 0o600 {
		t.Errorf("out.bak mode %v, want the previous file's 0600", m)
	}
}
