package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testservers"
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

// startReconf runs the reconf binary with args (plus -config-file naming a file that does not
// exist, so that no machine-wide config leaks in), logging to a file in dir.
func startReconf(t testing.TB, dir string, args ...string) *proc {
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
			t.Logf("reconf %v\n%s", args, p.tail(80))
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits for the exit; past within it kills the process and fails the
// test.
func (p *proc) stop(t testing.TB, within time.Duration) {
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

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of the log, for failure messages.
func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- reconf log (" + p.log + ") ---\n" + strings.Join(lines, "\n")
}
