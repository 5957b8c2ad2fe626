package watch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// reconfBin is the real reconf binary, built once for the package by TestMain.
var reconfBin string

func TestMain(m *testing.M) {
	// Every client and process waiter must be gone once the tests are.
	testservers.RunWithReconf(m, &reconfBin, "")
}

// proc is a reconf process started by a test: its own process group, output in a log file,
// stopped by its pid when the test ends.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	once sync.Once
}

// startReconf runs the reconf binary with args (plus -config-file pointing at a file that does
// not exist, so that no machine-wide config leaks in), logging to dir/reconf-<n>.log.
func startReconf(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	f, err := os.CreateTemp(dir, "reconf-*.log")
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{log: f.Name(), done: make(chan struct{})}
	args = append([]string{"-config-file", filepath.Join(dir, "no-such-reconf.toml")}, args...)
	p.cmd = exec.Command(reconfBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start reconf: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t, 15*time.Second)
		if t.Failed() {
			t.Logf("reconf %v\n%s", args, p.tail(60))
		}
	})
	return p
}

// pid is the reconf process's pid.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits for the exit; past within it kills the process by pid and fails
// the test.
func (p *proc) stop(t *testing.T, within time.Duration) {
	t.Helper()
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(within):
			t.Errorf("reconf (pid %d) still running %v after SIGTERM; killing it", p.pid(), within)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// tail returns the last n lines of the log, for failure messages.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- reconf log (" + p.log + ") ---\n" + strings.Join(lines, "\n")
}

// eventually is testutil.Eventually: poll until cond holds, fail after within.
var eventually = testutil.Eventually

// readFile returns the file's content, "" when it cannot be read.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// writeFile writes content to path, creating folders.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// addResource writes conf.d/<name>.toml and templates/<name>.tmpl under confdir. The toml is
// the body of the [template] table after src; dest is set by the caller in it.
func addResource(t *testing.T, confdir, name, toml, tmpl string) {
	t.Helper()
	writeFile(t, filepath.Join(confdir, "templates", name+".tmpl"), tmpl)
	writeFile(t, filepath.Join(confdir, "conf.d", name+".toml"),
		fmt.Sprintf("[template]\nsrc = %q\n%s\n", name+".tmpl", toml))
}

// countLines counts the lines of a file (0 when it does not exist).
func countLines(path string) int {
	return strings.Count(readFile(path), "\n")
}
