package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// host is one reconf process with its own confdir and output folder.
type host struct {
	id      int
	confdir string
	out     string // the resources' destination folder
	log     string // the process's stdout and stderr
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	exitErr error         // read after done is closed
	node    string
}

// fleet is the running hosts of one store.
type fleet struct {
	bin, root string
	k         int // resources per host
	backend   string
	node      func(i int) string // -node for host i
	allNodes  int                // > 0: host i is also given the next allNodes-1 members (node(i+1), …)
	extra     []string           // more flags for every host (-host-flags)
	mu        sync.Mutex
	hosts     []*host
}

// resName is resource i's name: its file, its template and its prefix /fleet/<name>.
func resName(i int) string { return fmt.Sprintf("p%02d", i) }

// grow starts hosts until there are n, batch at a time, each batch waiting until each of its
// hosts has rendered every resource.
func (f *fleet) grow(ctx context.Context, n, batch int, within time.Duration) error {
	for len(f.hosts) < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		var started []*host
		for range min(batch, n-len(f.hosts)) {
			h, err := f.start(len(f.hosts))
			if err != nil {
				return err
			}
			started = append(started, h)
		}
		for _, h := range started {
			if err := f.rendered(ctx, h, within); err != nil {
				return err
			}
		}
	}
	return nil
}

// start writes host i's confdir and starts its reconf in watch mode.
func (f *fleet) start(i int) (*host, error) {
	h := &host{id: i, confdir: filepath.Join(f.root, fmt.Sprintf("h%03d", i)), node: f.node(i)}
	h.out = filepath.Join(h.confdir, "out")
	h.log = filepath.Join(h.confdir, "reconf.log")
	for _, d := range []string{"conf.d", "templates", "out"} {
		if err := os.MkdirAll(filepath.Join(h.confdir, d), 0o755); err != nil {
			return nil, err
		}
	}
	for r := range f.k {
		name := resName(r)
		tmpl := fmt.Sprintf("v={{getv %q \"\"}}\n", "/fleet/"+name+"/k")
		toml := fmt.Sprintf("[template]\nsrc = %q\ndest = %q\nkeys = [%q]\n", name+".tmpl", filepath.Join(h.out, name), "/fleet/"+name)
		if err := os.WriteFile(filepath.Join(h.confdir, "templates", name+".tmpl"), []byte(tmpl), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(h.confdir, "conf.d", name+".toml"), []byte(toml), 0o644); err != nil {
			return nil, err
		}
	}
	lf, err := os.Create(h.log)
	if err != nil {
		return nil, err
	}
	args := []string{"-backend", f.backend, "-node", h.node}
	for j := 1; j < f.allNodes; j++ {
		args = append(args, "-node", f.node(i+j))
	}
	args = append(args, "-confdir", h.confdir, "-config-file", filepath.Join(h.confdir, "none.toml"), "-watch", "-log-level", "warn")
	h.cmd = exec.Command(f.bin, append(args, f.extra...)...)
	h.cmd.Stdout, h.cmd.Stderr = lf, lf
	// Its own process group, and killed with this program should it die without stopping it.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("host %d: start %s: %w", i, f.bin, err)
	}
	h.done = make(chan struct{})
	go func() {
		h.exitErr = h.cmd.Wait()
		lf.Close()
		close(h.done)
	}()
	f.mu.Lock()
	f.hosts = append(f.hosts, h)
	f.mu.Unlock()
	return h, nil
}

// rendered waits until every resource of h has its file.
func (f *fleet) rendered(ctx context.Context, h *host, within time.Duration) error {
	deadline := time.Now().Add(within)
	for r := 0; r < f.k; {
		if _, err := os.Stat(filepath.Join(h.out, resName(r))); err == nil {
			r++
			continue
		}
		select {
		case <-h.done:
			return fmt.Errorf("host %d (pid %d, -node %s) exited before it rendered %s: %v\n%s", h.id, h.cmd.Process.Pid, h.node, resName(r), h.exitErr, tail(h.log))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host %d (pid %d, -node %s): %s not rendered after %s\n%s", h.id, h.cmd.Process.Pid, h.node, resName(r), within, tail(h.log))
		}
	}
	return nil
}

// pids returns the hosts' pids.
func (f *fleet) pids() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int, len(f.hosts))
	for i, h := range f.hosts {
		out[i] = h.cmd.Process.Pid
	}
	return out
}

// exited returns an error naming the first host that is no longer running.
func (f *fleet) exited() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.hosts {
		select {
		case <-h.done:
			return fmt.Errorf("host %d (pid %d) exited: %v\n%s", h.id, h.cmd.Process.Pid, h.exitErr, tail(h.log))
		default:
		}
	}
	return nil
}

// stop stops every host by its pid: SIGTERM, SIGKILL after 5 s. It waits for the exits.
func (f *fleet) stop() {
	f.mu.Lock()
	hosts := f.hosts
	f.hosts = nil
	f.mu.Unlock()
	for _, h := range hosts {
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, h := range hosts {
		select {
		case <-h.done:
		case <-time.After(time.Until(deadline)):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
	}
}

// tail returns the last 2 KiB of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}
