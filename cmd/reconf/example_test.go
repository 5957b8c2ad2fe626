package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testutil"
)

// The shipped haproxy example, relative to this package.
var (
	exampleDir   = filepath.Join("..", "..", "examples", "haproxy")
	exampleData  = filepath.Join(exampleDir, "data.yaml")
	exampleWant  = filepath.Join(exampleDir, "haproxy.cfg.expected")
	runDefaultSh = filepath.Join("..", "..", "examples", "run-default.sh")
)

var (
	destLine   = regexp.MustCompile(`(?m)^dest = .*$`)
	reloadLine = regexp.MustCompile(`(?m)^reload_cmd = .*$`)
)

// exampleConfDir copies the haproxy example's conf.d and templates into a temp confdir, with
// dest rewritten to dest and a reload_cmd that only echoes. check_cmd (haproxy -c) is kept.
func exampleConfDir(t *testing.T, dest string) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"conf.d", "templates"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	toml := readFile(t, filepath.Join(exampleDir, "conf.d", "haproxy.toml"))
	if !destLine.MatchString(toml) || !reloadLine.MatchString(toml) || !strings.Contains(toml, `check_cmd = "haproxy -c -f {{.src}}"`) {
		t.Fatalf("example haproxy.toml lacks dest, reload_cmd or the haproxy check_cmd:\n%s", toml)
	}
	toml = destLine.ReplaceAllLiteralString(toml, `dest = "`+dest+`"`)
	toml = reloadLine.ReplaceAllLiteralString(toml, `reload_cmd = "echo reloaded {{.dest}}"`)
	writeTo(t, filepath.Join(dir, "conf.d", "haproxy.toml"), toml)
	tmpl := readFile(t, filepath.Join(exampleDir, "templates", "haproxy.cfg.tmpl"))
	writeTo(t, filepath.Join(dir, "templates", "haproxy.cfg.tmpl"), tmpl)
	return dir
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeTo(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// haproxyCheck runs the real haproxy on a config file; a missing haproxy fails the test.
func haproxyCheck(t *testing.T, cfg string) {
	t.Helper()
	hp, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy is required (apt-get install haproxy): %v", err)
	}
	if out, err := exec.Command(hp, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c -f %s: %v\n%s", cfg, err, out)
	}
}

func TestHaproxyExampleOnetime(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "haproxy.cfg")
	dir := exampleConfDir(t, dest)
	r := runBin(t, nil, append(noConfig(t), "-onetime", "-backend", "file", "-file", exampleData, "-confdir", dir)...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if got, want := readFile(t, dest), readFile(t, exampleWant); got != want {
		t.Fatalf("rendered haproxy.cfg differs from %s:\n%s", exampleWant, lineDiff(want, got))
	}
	haproxyCheck(t, dest)
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("dest mode: %v, %v; want 0644", fi, err)
	}

	// The same data under /prod, read with the global prefix (here from a config file).
	var nested strings.Builder
	nested.WriteString("prod:\n")
	for _, line := range strings.SplitAfter(readFile(t, exampleData), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			nested.WriteString("  " + line)
		}
	}
	data := filepath.Join(t.TempDir(), "prod.yaml")
	writeTo(t, data, nested.String())
	cfg := writeFile(t, "reconf.toml", "prefix = \"/prod\"\nbackend = \"file\"\n")
	os.Remove(dest)
	r = runBin(t, nil, "-config-file", cfg, "-onetime", "-file", data, "-confdir", dir)
	if r.code != 0 {
		t.Fatalf("with -prefix: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if got, want := readFile(t, dest), readFile(t, exampleWant); got != want {
		t.Fatalf("with -prefix /prod:\n%s", lineDiff(want, got))
	}
}

func TestOnetimeFailingResource(t *testing.T) {
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "haproxy.cfg")
	dir := exampleConfDir(t, dest)
	// A resource whose check fails, sorted before the good one: both are attempted.
	writeTo(t, filepath.Join(dir, "conf.d", "aaa-broken.toml"), `[template]
src = "broken.tmpl"
dest = "`+filepath.Join(tmp, "broken.out")+`"
keys = ["/haproxy"]
check_cmd = "echo refusing; false"
`)
	writeTo(t, filepath.Join(dir, "templates", "broken.tmpl"), "maxconn {{getv \"/haproxy/maxconn\"}}\n")
	r := runBin(t, nil, append(noConfig(t), "-onetime", "-backend", "file", "-file", exampleData, "-confdir", dir)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "aaa-broken.toml") {
		t.Errorf("stderr does not name the failed resource:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(tmp, "broken.out")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed check still wrote the destination: %v", err)
	}
	if got, want := readFile(t, dest), readFile(t, exampleWant); got != want {
		t.Errorf("the good resource was not rendered as expected:\n%s", lineDiff(want, got))
	}
}

func TestNoopPrintsDiffAndChangesNothing(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "haproxy.cfg")
	dir := exampleConfDir(t, dest)
	old := strings.Replace(readFile(t, exampleWant), "server web-3 10.0.1.13:8080 check", "server web-9 10.0.9.99:8080 check", 1)
	writeTo(t, dest, old)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(dest, past, past); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, nil, append(noConfig(t), "-onetime", "-noop", "-backend", "file", "-file", exampleData, "-confdir", dir)...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"-    server web-9 10.0.9.99:8080 check", "+    server web-3 10.0.1.13:8080 check"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("-noop output lacks %q:\n%s", want, r.stdout)
		}
	}
	if got := readFile(t, dest); got != old {
		t.Errorf("-noop changed the destination")
	}
	if fi, err := os.Stat(dest); err != nil || !fi.ModTime().Equal(past) {
		t.Errorf("-noop touched the destination: %v %v", fi.ModTime(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	if len(entries) != 1 {
		t.Errorf("-noop left files behind: %v", entries)
	}
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, d, "waiting for "+what, cond)
}

// started is a reconf process running in the background.
type started struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer // read only after wait
	done   chan error
}

func startBin(t *testing.T, path string, env []string, args ...string) *started {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = cleanEnv(env...)
	s := &started{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = os.Stderr, s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // by pid
			<-s.done
		}
	})
	return s
}

// stop sends sig and returns the exit code (deadline 30s).
func (s *started) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("reconf did not exit within 30s of %v", sig)
		return -1
	}
}

func TestWatchReloadAndStop(t *testing.T) {
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "haproxy.cfg")
	dir := exampleConfDir(t, dest)
	data := filepath.Join(tmp, "data.yaml")
	writeTo(t, data, readFile(t, exampleData))
	p := startBin(t, bin, nil, append(noConfig(t), "-watch", "-backend", "file", "-file", data, "-confdir", dir)...)
	want := readFile(t, exampleWant)
	waitFor(t, "the first render", 30*time.Second, func() bool { b, _ := os.ReadFile(dest); return string(b) == want })

	// A change in the data reaches the file.
	writeTo(t, data, strings.Replace(readFile(t, data), "web-3: 10.0.1.13:8080", "web-3: 10.0.1.99:8080", 1))
	waitFor(t, "the change to web-3", 30*time.Second, func() bool {
		b, _ := os.ReadFile(dest)
		return strings.Contains(string(b), "server web-3 10.0.1.99:8080 check")
	})

	// SIGHUP picks up a new resource.
	extra := filepath.Join(tmp, "extra.out")
	writeTo(t, filepath.Join(dir, "conf.d", "extra.toml"), "[template]\nsrc = \"extra.tmpl\"\ndest = \""+extra+"\"\nkeys = [\"/haproxy\"]\n")
	writeTo(t, filepath.Join(dir, "templates", "extra.tmpl"), "maxconn={{getv \"/haproxy/maxconn\"}}\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resource added before SIGHUP", 30*time.Second, func() bool {
		b, _ := os.ReadFile(extra)
		return string(b) == "maxconn=4096\n"
	})

	// A broken resource makes the next SIGHUP fail: the running set keeps working.
	writeTo(t, filepath.Join(dir, "conf.d", "zzz-bad.toml"), "[template]\nsrc = \"extra.tmpl\"\ndest = \"/nowhere\"\nmode = 0644\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	writeTo(t, data, strings.Replace(readFile(t, data), `maxconn: "4096"`, `maxconn: "8192"`, 1))
	waitFor(t, "the change after a failed reload", 30*time.Second, func() bool {
		b, _ := os.ReadFile(extra)
		return string(b) == "maxconn=8192\n"
	})

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	if log := p.stderr.String(); !strings.Contains(log, "zzz-bad.toml") {
		t.Errorf("the failed reload was not logged with the bad file:\n%s", log)
	}
}

func TestOnetimeBadResourceFile(t *testing.T) {
	// A resource file that does not load fails -onetime, after the others are rendered.
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "haproxy.cfg")
	dir := exampleConfDir(t, dest)
	writeTo(t, filepath.Join(dir, "conf.d", "bad.toml"), "[template]\nsrc = \"haproxy.cfg.tmpl\"\ndest = \"/nowhere\"\nmode = 0644\n")
	r := runBin(t, nil, append(noConfig(t), "-onetime", "-backend", "file", "-file", exampleData, "-confdir", dir)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "bad.toml") {
		t.Errorf("stderr does not name bad.toml:\n%s", r.stderr)
	}
	if got, want := readFile(t, dest), readFile(t, exampleWant); got != want {
		t.Errorf("the good resource was not rendered:\n%s", lineDiff(want, got))
	}
}

func TestRunDefaultScript(t *testing.T) {
	// The README's `make run`: the script renders the example into RECONF_RUN_DIR and watches.
	run := t.TempDir()
	p := startBin(t, runDefaultSh, []string{"RECONF_BIN=" + bin, "RECONF_RUN_DIR=" + run})
	dest := filepath.Join(run, "haproxy.cfg")
	want := readFile(t, exampleWant)
	waitFor(t, "make run's haproxy.cfg", 30*time.Second, func() bool { b, _ := os.ReadFile(dest); return string(b) == want })
	haproxyCheck(t, dest)
	if code := p.stop(t, syscall.SIGINT); code != 0 {
		t.Errorf("exit %d after SIGINT, want 0", code)
	}
	if !strings.Contains(p.stderr.String(), dest) {
		t.Errorf("the script did not say where it writes (%s):\n%s", dest, p.stderr)
	}
}

func TestReadmeCommands(t *testing.T) {
	// The README starts with the two commands, and both exist in the Makefile.
	readme := readFile(t, filepath.Join("..", "..", "README.md"))
	mk := readFile(t, filepath.Join("..", "..", "Makefile"))
	for _, c := range []string{"make run", "make test"} {
		if !strings.Contains(readme[:min(len(readme), 400)], c) {
			t.Errorf("README does not start with %q", c)
		}
		target := strings.TrimPrefix(c, "make ")
		if !regexp.MustCompile(`(?m)^` + target + `:`).MatchString(mk) {
			t.Errorf("Makefile has no %s target", target)
		}
	}
	if !strings.Contains(mk, "examples/run-default.sh") {
		t.Errorf("make run does not run examples/run-default.sh")
	}
}

// lineDiff shows the first differing line of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n want: " + wl + "\n  got: " + gl
		}
	}
	return "(equal)"
}

func TestServiceFunctionUsesServicesPrefix(t *testing.T) {
	// `service` reads the key convention under -services-prefix (here from the file backend).
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "confdir")
	for _, sub := range []string{"conf.d", "templates"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(tmp, "upstreams.conf")
	writeTo(t, filepath.Join(dir, "conf.d", "up.toml"), "[template]\nsrc = \"up.tmpl\"\ndest = \""+out+"\"\nkeys = [\"/app\"]\n")
	writeTo(t, filepath.Join(dir, "templates", "up.tmpl"), "{{range service \"web\"}}server {{.ID}} {{.Address}}:{{.Port}}\n{{end}}")
	data := filepath.Join(tmp, "data.yaml")
	writeTo(t, data, "app:\n  name: demo\nsvc:\n  web:\n    web-2: 10.0.0.6:8080\n    web-1: '{\"address\":\"10.0.0.5\",\"port\":8081}'\n")
	r := runBin(t, nil, append(noConfig(t), "-onetime", "-backend", "file", "-file", data, "-confdir", dir, "-services-prefix", "/svc")...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if got, want := readFile(t, out), "server web-1 10.0.0.5:8081\nserver web-2 10.0.0.6:8080\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
