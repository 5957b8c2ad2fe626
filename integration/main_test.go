package integration

import (
	"bytes"
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
	"go.uber.org/goleak"
)

// reconfBin is the reconf binary built once for the package (TestMain).
var reconfBin string

func TestMain(m *testing.M) {
	// Every goroutine the tests started (load workers, backends, clients) must be gone; idle
	// keep-alive connections of the store clients' pools may linger and are allowed.
	testservers.RunWithReconf(m, &reconfBin, "",
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// proc is a child process whose output goes to a log file; it is stopped by its pid.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	once sync.Once
}

// start runs bin with args, output to dir/<name>.log, and stops it (SIGTERM, then SIGKILL)
// when the test ends.
func start(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t, syscall.SIGTERM, 10*time.Second) })
	return p
}

// stop signals the process and waits for it to exit; past the deadline it is killed.
func (p *proc) stop(t *testing.T, sig syscall.Signal, within time.Duration) {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(within):
			t.Errorf("%s did not exit within %v of %v; killing it", p.name, within, sig)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// exitCode is the process's exit code once it has exited.
func (p *proc) exitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// tail returns the last n lines of the process's log, for failure messages.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return p.name + " log:\n" + strings.Join(lines, "\n")
}

// run runs a command to completion and fails the test if it fails.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// eventually is testutil.Eventually: poll until cond holds, fail after within.
var eventually = testutil.Eventually

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func execCombined(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}
