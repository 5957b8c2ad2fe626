package testservers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts used when starting and stopping servers.
const (
	// StopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
	StopGrace = 5 * time.Second
	// bindAttempts is how many times a first start is retried with fresh ports when another
	// process took a chosen port between our probe and the server's bind.
	bindAttempts = 3
)

// Server is one running server process.
type Server struct {
	Addr string // host:port clients dial
	// Dir is the server's data folder (a t.TempDir); its log is Dir/server.log.
	Dir string
	// Name says which server this is ("etcd", "redis", "zookeeper", "consul").
	Name string
	// Ports holds every port the server listens on by role ("client", "peer", "http", …).
	Ports map[string]int

	spec spec

	mu sync.Mutex
	p  *proc // the current (or last) process; nil before the first start
}

// proc is one run of the server's process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result; read only after done is closed
}

// spec says how to run one kind of server.
type spec struct {
	name    string
	binary  string
	roles   []string                                        // port roles to allocate; roles[0] is Addr's port
	args    func(dir string, ports map[string]int) []string // command line after the binary
	setup   func(dir string, ports map[string]int) error    // optional: write config files
	ready   func(ctx context.Context, s *Server) error      // one readiness probe
	timeout time.Duration                                   // readiness deadline
	env     []string                                        // extra environment, KEY=value
}

// Port returns the port of Addr, the one clients dial.
func (s *Server) Port() int { return s.Ports[s.spec.roles[0]] }

// PID returns the pid of the running process, or 0 when the server is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited() {
		return 0
	}
	return s.p.cmd.Process.Pid
}

// LogPath is the file that holds the server's stdout and stderr.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "server.log") }

// Logs returns the last 8 KiB of the server's log.
func (s *Server) Logs() string {
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 8 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

func (s *Server) exited() bool {
	if s.p == nil {
		return true
	}
	select {
	case <-s.p.done:
		return true
	default:
		return false
	}
}

// start launches the process and waits until it answers. It returns an error instead of
// failing the test so that a first start can retry on a port race.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.exited() {
		return fmt.Errorf("%s: already running (pid %d)", s.Name, s.p.cmd.Process.Pid)
	}
	if s.spec.setup != nil {
		if err := s.spec.setup(s.Dir, s.Ports); err != nil {
			return fmt.Errorf("%s: setup: %w", s.Name, err)
		}
	}
	lf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log: %w", s.Name, err)
	}
	args := s.spec.args(s.Dir, s.Ports)
	fmt.Fprintf(lf, "=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), s.spec.binary, strings.Join(args, " "))
	cmd := exec.Command(s.spec.binary, args...)
	cmd.Dir = s.Dir
	if len(s.spec.env) > 0 {
		cmd.Env = append(os.Environ(), s.spec.env...)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group so signals reach the whole server; die with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("%s: start %s: %w", s.Name, s.spec.binary, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	s.p = p
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return s.waitReady(p)
}

// waitReady polls the readiness probe until it passes, the process exits or the deadline
// passes. Called with s.mu held; the probe must not take it.
func (s *Server) waitReady(p *proc) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.spec.timeout)
	defer cancel()
	var last error
	for delay := 20 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		last = s.spec.ready(pctx, s)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s: exited before it was ready (%v): %w", s.Name, p.err, errExited)
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("%s: not ready after %s: %w", s.Name, s.spec.timeout, last)
		case <-time.After(delay):
		}
	}
}

var errExited = errors.New("server exited")

// kill stops the process group: SIGTERM (and SIGCONT, in case it is paused), SIGKILL after
// StopGrace. It waits for the exit. Called with s.mu held or from a stopped server's owner.
func (s *Server) kill() {
	if s.exited() {
		return
	}
	pid := s.p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = syscall.Kill(-pid, syscall.SIGCONT)
	done := s.p.done
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-done:
		return
	case <-time.After(StopGrace):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-done
}

// Stop stops the server (SIGTERM, then SIGKILL after a deadline) and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

// Start starts a stopped server again on the same address and data folder, waiting until it
// answers.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("testservers: restart %s on %s: %v\n--- %s log (%s) ---\n%s", s.Name, s.Addr, err, s.Name, s.LogPath(), s.Logs())
	}
}

// Pause sends SIGSTOP (a frozen server); Resume sends SIGCONT.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
	// SIGSTOP is delivered asynchronously: until the process is in the stopped state a
	// request sent right after Pause may still be answered.
	pid := s.PID()
	deadline := time.Now().Add(5 * time.Second)
	for !stopped(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("testservers: %s: pid %d not stopped 5s after SIGSTOP", s.Name, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopped reports whether pid is in the stopped state (T) according to /proc.
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'T'
}

// Resume sends SIGCONT to a paused server.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited() {
		t.Fatalf("testservers: %s: %v: server is not running", s.Name, sig)
	}
	if err := syscall.Kill(-s.p.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("testservers: %s: %v: %v", s.Name, sig, err)
	}
}

// launch allocates ports and a data folder, starts the server and registers its cleanup. A
// first start that fails because the process exited (usually a port taken between our probe
// and its bind) is retried with fresh ports.
func launch(t testing.TB, sp spec) *Server {
	t.Helper()
	if _, err := exec.LookPath(sp.binary); err != nil {
		t.Fatalf("testservers: %s: binary %q not found: %v (scripts/install-deps.sh installs the servers)", sp.name, sp.binary, err)
	}
	s := &Server{Name: sp.name, Dir: t.TempDir(), spec: sp}
	t.Cleanup(func() {
		s.mu.Lock()
		s.kill()
		s.mu.Unlock()
		if t.Failed() {
			t.Logf("--- %s log (%s), last 8 KiB ---\n%s", s.Name, s.LogPath(), s.Logs())
		}
	})
	var err error
	for attempt := 0; attempt < bindAttempts; attempt++ {
		s.Ports = make(map[string]int, len(sp.roles))
		for _, r := range sp.roles {
			s.Ports[r] = freePort(t)
		}
		s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Ports[sp.roles[0]])
		if err = s.start(); err == nil {
			return s
		}
		if !errors.Is(err, errExited) || !strings.Contains(s.Logs(), "in use") {
			break
		}
		// Start afresh: a half-initialised data folder remembers the old ports.
		if err := os.RemoveAll(filepath.Join(s.Dir, "data")); err != nil {
			t.Fatalf("testservers: %s: %v", sp.name, err)
		}
	}
	t.Fatalf("testservers: start %s: %v\n--- %s log (%s) ---\n%s", sp.name, err, sp.name, s.LogPath(), s.Logs())
	return nil
}
