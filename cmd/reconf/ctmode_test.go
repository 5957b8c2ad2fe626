package main

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// reconf in consul-template mode (a consul-template-only flag on the command line), with the
// file backend; then the same cases against the real consul-template and a real Consul.

// ctDeadline bounds one run of either binary.
const ctDeadline = 30 * time.Second

// ctProc is reconf or consul-template running in the background, in dir.
type ctProc struct {
	cmd            *exec.Cmd
	stdout, stderr testutil.SyncBuffer
	done           chan struct{}
	err            error
}

// ctEnv is the test's environment without the variables either binary reads as settings
// (RECONF_*, CONSUL_*, VAULT_*, …; see testservers.ConsulTemplateEnv).
func ctEnv() []string { return testservers.ConsulTemplateEnv() }

func ctStart(t *testing.T, path, dir string, args ...string) *ctProc {
	t.Helper()
	p := &ctProc{cmd: exec.Command(path, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = ctEnv()
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	// Its own process group, so that commands it spawned can be stopped with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// An -exec child runs in a group of its own and may outlive a killed reconf holding its
	// output: Wait stops waiting for the output then instead of hanging the test.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // its group, by pid
			<-p.done
		}
	})
	return p
}

func (p *ctProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit (failing the test past d) and returns its exit code.
func (p *ctProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Fatalf("%s %q still running after %v; killed it\nstderr:\n%s", p.cmd.Path, p.cmd.Args[1:], d, p.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.cmd.Path, p.err)
	}
	return 0
}

func (p *ctProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// ctRun runs path in dir to completion (stopped by pid past ctDeadline, which fails the test).
func ctRun(t *testing.T, path, dir string, args ...string) result {
	t.Helper()
	r := testservers.ConsulTemplateCmd{Binary: path, Dir: dir, Args: args, Timeout: ctDeadline}.Run(t)
	if r.TimedOut {
		t.Fatalf("%s %q still running after %v; stopped it\nstderr:\n%s", path, args, ctDeadline, r.Stderr)
	}
	return result{r.Exit, r.Stdout, r.Stderr}
}

// consulPut writes k=v to the Consul agent at addr through its HTTP API.
func consulPut(t *testing.T, addr, k, v string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/kv/"+k, strings.NewReader(v))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT %s: %s", k, resp.Status)
	}
}

// ctDir is a new folder holding files (name → contents, mode 0644).
func ctDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		writeTo(t, filepath.Join(dir, name), body)
	}
	return dir
}

// outputs are the files of dir not named in inputs: name → "mode contents".
func outputs(t *testing.T, dir string, inputs map[string]string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if _, in := inputs[rel]; in {
			return nil
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got[rel] = fmt.Sprintf("%v %s", st.Mode(), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// modeAndContents is a file's "mode contents".
func modeAndContents(t *testing.T, p string) string {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%v %s", st.Mode(), readFile(t, p))
}

// showFiles lists m (name → "mode contents") one file a line, by name.
func showFiles(m map[string]string) string {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s: %q\n", n, m[n])
	}
	return b.String()
}

const ctData = "app:\n  name: web\n  port: \"80\"\n"

// fileArgs points reconf at the data file in dir.
func fileArgs(dir string) []string {
	return []string{"-backend", "file", "-file", filepath.Join(dir, "data.yaml")}
}

func TestCTModeExitCodes(t *testing.T) {
	inputs := map[string]string{
		"data.yaml":      ctData,
		"a.tpl":          `name={{ key "app/name" }}` + "\n",
		"bad.tpl":        `{{ parseInt "not a number" }}`,
		"c.tpl":          `port={{ key "app/port" }}` + "\n",
		"syntax.hcl":     "template {\n  source = \"a.tpl\"\n",
		"unknown.hcl":    "bogus_key = 1\n",
		"unknowntpl.hcl": "template {\n  source = \"a.tpl\"\n  destination = \"x\"\n  bogus = true\n}\n",
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string            // must be in stderr
		files  map[string]string // outputs, exactly
		stdout string
	}{
		{"bad flag", []string{"-once", "-bogus"}, 13, "flag provided but not defined: -bogus", map[string]string{}, ""},
		{"extra argument", []string{"-once", "stray"}, 13, "extra args", map[string]string{}, ""},
		{"hcl syntax error", []string{"-once", "-config", "syntax.hcl"}, 15, "syntax.hcl", map[string]string{}, ""},
		{"unknown key", []string{"-once", "-config", "unknown.hcl"}, 15, "bogus_key", map[string]string{}, ""},
		{"unknown template key", []string{"-once", "-config", "unknowntpl.hcl"}, 15, "bogus", map[string]string{}, ""},
		{"missing config file", []string{"-once", "-config", "absent.hcl"}, 15, "absent.hcl", map[string]string{}, ""},
		{
			"template error", []string{"-once", "-template", "a.tpl:a.out:echo ran-a", "-template", "bad.tpl:bad.out", "-template", "c.tpl:c.out"},
			14, "parseInt", map[string]string{"a.out": "-rw-r--r-- name=web\n"}, "",
		},
		{
			"failing command", []string{"-once", "-template", "a.tpl:a.out:echo out-a; exit 3"},
			14, "exit 3", map[string]string{}, "out-a\n",
		},
		{
			"success", []string{"-once", "-template", "a.tpl:a.out:echo ran", "-template", "c.tpl:c.out:echo ran"},
			0, "", map[string]string{"a.out": "-rw-r--r-- name=web\n", "c.out": "-rw-r--r-- port=80\n"}, "ran\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := ctDir(t, inputs)
			r := ctRun(t, bin, dir, append(fileArgs(dir), tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, r.stderr)
			}
			if r.stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tc.stdout)
			}
			if got := outputs(t, dir, inputs); showFiles(got) != showFiles(tc.files) {
				t.Errorf("files:\n%swant:\n%s", showFiles(got), showFiles(tc.files))
			}
		})
	}
}

func TestCTModeOnceWaitsForMissingKey(t *testing.T) {
	t.Parallel()
	dir := ctDir(t, map[string]string{
		"data.yaml": ctData,
		"a.tpl":     `name={{ key "app/name" }}`,
		"b.tpl":     `later={{ key "app/later" }}`,
	})
	p := ctStart(t, bin, dir, append(fileArgs(dir), "-once", "-log-level", "debug",
		"-template", "a.tpl:a.out", "-template", "b.tpl:b.out:echo b-written")...)
	waitFor(t, "a.out written and b waiting", 20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "a.out"))
		return string(b) == "name=web" && strings.Contains(p.stderr.String(), "template waits for data")
	})
	if p.exited() {
		t.Fatalf("-once exited while a key was missing\nstderr:\n%s", p.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "b.out")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("b.out written while its key is missing: %v", err)
	}
	writeTo(t, filepath.Join(dir, "data.yaml"), ctData+"  later: now\n")
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", code, p.stderr.String())
	}
	if got := readFile(t, filepath.Join(dir, "b.out")); got != "later=now" {
		t.Errorf("b.out = %q", got)
	}
	if got := p.stdout.String(); got != "b-written\n" {
		t.Errorf("stdout %q, want the command's output", got)
	}
}

func TestCTModeSIGINTExits12(t *testing.T) {
	t.Parallel()
	dir := ctDir(t, map[string]string{"data.yaml": ctData, "a.tpl": `name={{ key "app/name" }}`})
	p := ctStart(t, bin, dir, append(fileArgs(dir), "-template", "a.tpl:a.out")...)
	waitFor(t, "a.out", 20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "a.out"))
		return string(b) == "name=web"
	})
	if p.exited() {
		t.Fatalf("exited without -once\nstderr:\n%s", p.stderr.String())
	}
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 20*time.Second); code != 12 {
		t.Errorf("exit %d after SIGINT, want 12\nstderr:\n%s", code, p.stderr.String())
	}
}

func TestCTModeSIGHUPReloadsConfig(t *testing.T) {
	t.Parallel()
	dir := ctDir(t, map[string]string{
		"data.yaml":  ctData,
		"a.tpl":      `name={{ key "app/name" }}`,
		"b.tpl":      `port={{ key "app/port" }}`,
		"config.hcl": "template {\n  source = \"a.tpl\"\n  destination = \"a.out\"\n}\n",
	})
	p := ctStart(t, bin, dir, append(fileArgs(dir), "-config", "config.hcl")...)
	waitFor(t, "a.out", 20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "a.out"))
		return string(b) == "name=web"
	})
	writeTo(t, filepath.Join(dir, "config.hcl"), "template {\n  source = \"b.tpl\"\n  destination = \"b.out\"\n  perms = 0600\n}\n")
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "b.out after SIGHUP", 20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "b.out"))
		return string(b) == "port=80"
	})
	if st, err := os.Stat(filepath.Join(dir, "b.out")); err != nil || st.Mode() != 0o600 {
		t.Errorf("b.out mode %v (%v), want 0600", st.Mode(), err)
	}
	if p.exited() {
		t.Fatalf("exited after SIGHUP\nstderr:\n%s", p.stderr.String())
	}
	// The reloaded templates are the ones watched now: a data change reaches b.out.
	writeTo(t, filepath.Join(dir, "data.yaml"), "app:\n  name: web\n  port: \"81\"\n")
	waitFor(t, "b.out after a data change", 20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "b.out"))
		return string(b) == "port=81"
	})
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 20*time.Second); code != 12 {
		t.Errorf("exit %d after SIGINT, want 12", code)
	}
}

func TestCTModeDryOnce(t *testing.T) {
	t.Parallel()
	inputs := map[string]string{
		"data.yaml": ctData,
		"a.tpl":     `name={{ key "app/name" }}` + "\n",
		"b.tpl":     `port={{ key "app/port" }}`,
		"same.out":  "port=80",
	}
	dir := ctDir(t, inputs)
	abs := filepath.Join(dir, "abs.out")
	r := ctRun(t, bin, dir, append(fileArgs(dir), "-dry", "-once",
		"-template", "a.tpl:a.out:echo no", "-template", "b.tpl:same.out", "-template", "b.tpl:"+abs)...)
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	want := "> a.out\nname=web\n" + "> " + abs + "\nport=80"
	if r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if got := outputs(t, dir, inputs); len(got) != 0 {
		t.Errorf("-dry wrote files:\n%s", showFiles(got))
	}
}

// TestCTModeOracle runs the same command lines through the real consul-template against a
// real Consul, and through reconf against the same Consul and against the file backend.
func TestCTModeOracle(t *testing.T) {
	ct := testservers.ConsulTemplateBinary(t)
	consul := testservers.Consul(t)
	consulPut(t, consul.Addr, "app/name", "web")
	consulPut(t, consul.Addr, "app/port", "80")

	// Every template reads both keys: consul-template runs its templates again each time one
	// of its queries answers, so templates reading different keys may render in different runs
	// (and a command they share then runs once per run). Reading the same keys, they render in
	// the one run where both answers are in, as reconf's single pass renders them.
	inputs := map[string]string{
		"data.yaml":   ctData,
		"a.tpl":       `name={{ key "app/name" }}{{ $p := key "app/port" }}` + "\n",
		"bad.tpl":     `{{ $p := key "app/port" }}{{ $n := key "app/name" }}{{ if and $p $n }}{{ parseInt $n }}{{ end }}`,
		"c.tpl":       `port={{ key "app/port" }}{{ $n := key "app/name" }}`,
		"same.out":    "port=80",
		"syntax.hcl":  "template {\n  source = \"a.tpl\"\n",
		"unknown.hcl": "bogus_key = 1\n",
		"perms.hcl":   "template {\n  source = \"a.tpl\"\n  destination = \"p/q/a.out\"\n  perms = \"0640\"\n  command = \"echo from-config\"\n}\n",
		"old.out":     "old contents\n",
		"nodata.tpl":  `{{ parseInt "not a number" }}`,
		"bak.hcl":     "template {\n  source = \"a.tpl\"\n  destination = \"old.out\"\n  backup = true\n  perms = 0600\n}\n",
	}
	tests := []struct {
		name string
		args []string
		// reconfFiles, when not nil, is what reconf leaves instead of consul-template's files:
		// a deliberate difference.
		reconfFiles map[string]string
		// ctFiles, when not nil, is what consul-template must leave (checked before comparing).
		ctFiles map[string]string
	}{
		{name: "success", args: []string{"-once", "-template", "a.tpl:a.out:echo shared", "-template", "c.tpl:c.out:echo shared", "-template", "c.tpl:same.out:echo unchanged"}},
		{name: "config file", args: []string{"-once", "-config", "perms.hcl"}},
		{name: "bad flag", args: []string{"-once", "-bogus"}},
		{name: "bad config syntax", args: []string{"-once", "-config", "syntax.hcl"}},
		{name: "bad config key", args: []string{"-once", "-config", "unknown.hcl"}},
		{name: "template error", args: []string{"-once", "-template", "a.tpl:a.out:echo ran-a", "-template", "bad.tpl:bad.out", "-template", "c.tpl:c.out"}},
		// consul-template leaves old.out rewritten after its command failed; reconf puts the
		// previous file back (documented in resource/ctres).
		{name: "failing command", args: []string{"-once", "-template", "a.tpl:old.out:echo out-a; exit 3"}, reconfFiles: map[string]string{}, ctFiles: map[string]string{"old.out": "-rw-r--r-- name=web\n"}},
		// A template error that needs no data: consul-template's first run has no answers
		// yet, so the error comes before the templates above it render; reconf reads the store
		// in its pass, renders a.out and then meets the error (same exit code).
		{
			name: "template error before data", args: []string{"-once", "-template", "a.tpl:a.out:echo ran-a", "-template", "nodata.tpl:bad.out"},
			ctFiles: map[string]string{}, reconfFiles: map[string]string{"a.out": "-rw-r--r-- name=web\n"},
		},
		{name: "backup", args: []string{"-once", "-config", "bak.hcl"}},
		{name: "dry", args: []string{"-dry", "-once", "-template", "a.tpl:a.out:echo no", "-template", "c.tpl:same.out", "-template", "c.tpl:c.out"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctDirPath := ctDir(t, inputs)
			want := ctRun(t, ct, ctDirPath, append([]string{"-consul-addr", consul.Addr}, tc.args...)...)
			wantFiles := outputs(t, ctDirPath, inputs)
			if old := modeAndContents(t, filepath.Join(ctDirPath, "old.out")); old != "-rw-r--r-- old contents\n" {
				wantFiles["old.out"] = old
			}
			t.Logf("consul-template: exit %d, stdout %q, files:\n%s", want.code, want.stdout, showFiles(wantFiles))
			if tc.ctFiles != nil && showFiles(wantFiles) != showFiles(tc.ctFiles) {
				t.Errorf("consul-template's files:\n%swant:\n%s", showFiles(wantFiles), showFiles(tc.ctFiles))
			}
			for _, variant := range []struct {
				name string
				args func(dir string) []string
			}{
				{"reconf on consul", func(string) []string { return []string{"-consul-addr", consul.Addr} }},
				{"reconf on file", fileArgs},
			} {
				dir := ctDir(t, inputs)
				got := ctRun(t, bin, dir, append(variant.args(dir), tc.args...)...)
				if got.code != want.code {
					t.Errorf("%s: exit %d, consul-template %d\nstderr:\n%s", variant.name, got.code, want.code, got.stderr)
				}
				if got.stdout != want.stdout {
					t.Errorf("%s: stdout %q, consul-template %q", variant.name, got.stdout, want.stdout)
				}
				gotFiles := outputs(t, dir, inputs)
				if old := modeAndContents(t, filepath.Join(dir, "old.out")); old != "-rw-r--r-- old contents\n" {
					gotFiles["old.out"] = old
				}
				wf := wantFiles
				if tc.reconfFiles != nil {
					wf = tc.reconfFiles
				}
				if showFiles(gotFiles) != showFiles(wf) {
					t.Errorf("%s: files:\n%swant:\n%s", variant.name, showFiles(gotFiles), showFiles(wf))
				}
			}
		})
	}
}

// TestCTModeOracleSignalsAndWaiting: -once waits for a missing key and exits 0 once it
// appears, and SIGINT ends a watching process with 12, in consul-template and in reconf alike.
func TestCTModeOracleSignalsAndWaiting(t *testing.T) {
	ct := testservers.ConsulTemplateBinary(t)
	consul := testservers.Consul(t)
	consulPut(t, consul.Addr, "app/name", "web")
	inputs := map[string]string{
		"a.tpl": `name={{ key "app/name" }}`,
		"b.tpl": `later={{ key "app/later" }}`,
	}
	for i, path := range []string{ct, bin} {
		later := fmt.Sprintf("app/later%d", i) // a key of its own for each binary
		in := map[string]string{"a.tpl": inputs["a.tpl"], "b.tpl": strings.Replace(inputs["b.tpl"], "app/later", later, 1)}

		dir := ctDir(t, in)
		p := ctStart(t, path, dir, "-consul-addr", consul.Addr, "-once", "-template", "a.tpl:a.out", "-template", "b.tpl:b.out:echo b-done")
		waitFor(t, filepath.Base(path)+" writes a.out", 20*time.Second, func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "a.out"))
			return string(b) == "name=web"
		})
		if p.exited() {
			t.Fatalf("%s -once exited while a key was missing\nstderr:\n%s", path, p.stderr.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "b.out")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s wrote b.out while its key is missing: %v", path, err)
		}
		consulPut(t, consul.Addr, later, "now")
		if code := p.wait(t, 20*time.Second); code != 0 {
			t.Errorf("%s: exit %d after the key appeared, want 0\nstderr:\n%s", path, code, p.stderr.String())
		}
		if got := readFile(t, filepath.Join(dir, "b.out")); got != "later=now" {
			t.Errorf("%s: b.out = %q", path, got)
		}
		if got := p.stdout.String(); got != "b-done\n" {
			t.Errorf("%s: stdout %q", path, got)
		}

		dir = ctDir(t, in)
		p = ctStart(t, path, dir, "-consul-addr", consul.Addr, "-template", "a.tpl:a.out")
		waitFor(t, filepath.Base(path)+" writes a.out (watching)", 20*time.Second, func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "a.out"))
			return string(b) == "name=web"
		})
		p.signal(t, syscall.SIGINT)
		if code := p.wait(t, 20*time.Second); code != 12 {
			t.Errorf("%s: exit %d after SIGINT, want 12\nstderr:\n%s", path, code, p.stderr.String())
		}
	}
}
