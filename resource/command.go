package resource

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
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

// runCommand runs cmd with /bin/sh -c in a process group of its own. When timeout passes or
// ctx is done, the whole group gets SIGTERM and, killGrace later, SIGKILL. It returns the
// command's combined output (the tail, capped) and an error wrapping ErrTimeout on a timeout.
func runCommand(ctx context.Context, cmd string, timeout time.Duration) ([]byte, error) {
	c := exec.Command("/bin/sh", "-c", cmd)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &tailBuffer{max: maxOutput}
	c.Stdout, c.Stderr = out, out
	c.WaitDelay = pipeGrace
	if err := c.Start(); err != nil {
		return nil, err
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
		return out.Bytes(), err
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
		<-done
	}
	return out.Bytes(), reason
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
