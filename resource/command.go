package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

// Process handling knobs; variables so that tests can shorten them.
var (
	// killGrace is how long a timed-out command's group has between SIGTERM and SIGKILL.
	killGrace = 2 * time.Second
	// pipeGrace bounds the wait for output pipes held open by background children after the
	// shell exited.
	pipeGrace = 2 * time.Second
)

// maxOutput caps how much command output is kept for errors and logs.
const maxOutput = 8 << 10

// expandCommand executes cmd as a text/template over {{.src}} and {{.dest}}.
func expandCommand(cmd, src, dest string) (string, error) {
	if cmd == "" {
		return "", nil
	}
	t, err := template.New("cmd").Option("missingkey=error").Parse(cmd)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, map[string]string{"src": src, "dest": dest}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// runCommand runs cmd in a process group of its own: directly when directArgs says that
// /bin/sh would only split it into words, with /bin/sh -c otherwise (and when starting it
// directly fails: the shell then says "not found" with status 127, or runs a script that has
// no #! line, as before). When timeout passes or ctx is done, the whole group gets SIGTERM
// and, killGrace later, SIGKILL. It returns the command's combined output (the tail, capped)
// and an error wrapping ErrTimeout on a timeout.
func runCommand(ctx context.Context, cmd string, timeout time.Duration) ([]byte, error) {
	if argv, ok := directArgs(cmd); ok {
		if out, started, err := run(ctx, argv, true, timeout); started {
			return out, err
		}
	}
	return runShell(ctx, cmd, timeout)
}

// runShell runs cmd with /bin/sh -c.
func runShell(ctx context.Context, cmd string, timeout time.Duration) ([]byte, error) {
	out, _, err := run(ctx, []string{"/bin/sh", "-c", cmd}, false, timeout)
	return out, err
}

// run starts argv and waits for it as runCommand describes; direct says that argv is what
// the shell would have started, and gets the shell's environment and exit status. started is
// false when argv could not be started, with the reason in err.
func run(ctx context.Context, argv []string, direct bool, timeout time.Duration) (_ []byte, started bool, _ error) {
	c := exec.Command(argv[0], argv[1:]...)
	if direct {
		c.Env = shellEnv()
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &tailBuffer{max: maxOutput}
	c.Stdout, c.Stderr = out, out
	c.WaitDelay = pipeGrace
	if err := c.Start(); err != nil {
		return nil, false, err
	}
	pgid := c.Process.Pid
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()

	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	var reason error
	select {
	case err := <-done:
		if errors.Is(err, exec.ErrWaitDelay) {
			err = nil // exited 0; a background child kept the output open
		}
		if direct {
			err = signalStatus(err)
		}
		return out.Bytes(), true, err
	case <-timer:
		reason = fmt.Errorf("%w after %v", ErrTimeout, timeout)
	case <-ctx.Done():
		reason = ctx.Err()
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := time.NewTimer(killGrace)
	defer grace.Stop()
	exited := false
	select {
	case <-done:
		exited = true
	case <-grace.C:
	}
	// Members that ignored SIGTERM, or that outlived the shell, get SIGKILL.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if !exited {
		<-done // reaps the shell
	}
	// The report waits until nothing the command started is left: SIGKILL takes effect when
	// the process next runs, and the shell's orphans are reaped by init.
	if left := killGroup(pgid, killWait); len(left) > 0 {
		reason = fmt.Errorf("%w; processes %v of its group still running", reason, left)
	}
	return out.Bytes(), true, reason
}

// signalStatus gives a command started directly that a signal killed the status /bin/sh -c
// reports for it, 128 + the signal's number: "exit status 143 (signal: terminated)".
func signalStatus(err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &signaledError{status: 128 + int(ws.Signal()), err: err}
	}
	return err
}

// signaledError is the error of a command started directly that a signal killed.
type signaledError struct {
	status int // what /bin/sh -c would have exited with
	err    error
}

func (e *signaledError) Error() string { return fmt.Sprintf("exit status %d (%v)", e.status, e.err) }
func (e *signaledError) Unwrap() error { return e.err }

// killWait bounds how long a killed command's group may take to be gone; zombieWait how long
// its zombies may take to be collected by their parent.
var (
	killWait   = 5 * time.Second
	zombieWait = 200 * time.Millisecond
)

// killGroup sends SIGKILL to process group pgid until none of its members is left, or wait
// passed. It returns the pids still running at the end. A zombie (dead, its exit status not
// collected yet) is gone: its parent, init once the shell died, must reap it, not we; we give
// that zombieWait, so that a pid check right after the report finds nothing on a system
// whose init reaps promptly.
func killGroup(pgid int, wait time.Duration) []int {
	start := time.Now()
	deadline := start.Add(wait)
	pause := time.Millisecond
	for {
		if errors.Is(syscall.Kill(-pgid, syscall.SIGKILL), syscall.ESRCH) {
			return nil
		}
		running := groupMembers(pgid)
		if len(running) == 0 && time.Since(start) >= min(zombieWait, wait) {
			return nil // zombies only
		}
		if time.Now().After(deadline) {
			return running
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// groupMembers lists the processes of group pgid from /proc that are not yet dead (zombies
// are left out). Without /proc (not Linux) it cannot tell, and says that the group runs.
func groupMembers(pgid int) (running []int) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{-pgid}
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		if f[0] != "Z" && f[0] != "X" {
			running = append(running, pid)
		}
	}
	return running
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	b    []byte
	lost bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.lost = true
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lost {
		return append([]byte("…"), t.b...)
	}
	return append([]byte(nil), t.b...)
}

// commandError describes a failed command: its error and what it printed.
func commandError(sentinel error, err error, out []byte) error {
	o := strings.TrimSpace(string(out))
	if o == "" {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return fmt.Errorf("%w: %w; output: %s", sentinel, err, o)
}
