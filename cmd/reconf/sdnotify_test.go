package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notifySocket plays systemd's side of sd_notify: a unix datagram socket that collects every
// message the process sends.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(t.TempDir(), "notify.sock")}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return n
}

// has reports whether some message so far contains s.
func (n *notifySocket) has(s string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// Under a Type=notify unit reconf says READY=1 only after the first full render, RELOADING=1
// and READY=1 around SIGHUP, pets the watchdog when WATCHDOG_USEC asks, and STOPPING=1 on exit.
func TestSystemdNotify(t *testing.T) {
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "haproxy.cfg")
	dir := exampleConfDir(t, dest)
	data := filepath.Join(tmp, "data.yaml")
	writeTo(t, data, readFile(t, exampleData))
	n := listenNotify(t)
	p := startBin(t, bin, []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=200000", "WATCHDOG_PID="},
		append(noConfig(t), "-watch", "-backend", "file", "-file", data, "-confdir", dir)...)

	waitFor(t, "READY=1", 30*time.Second, func() bool { return n.has("READY=1") })
	if b, err := os.ReadFile(dest); err != nil || string(b) != readFile(t, exampleWant) {
		t.Fatalf("READY=1 sent before the first render was on disk (err %v)", err)
	}
	waitFor(t, "WATCHDOG=1", 10*time.Second, func() bool { return n.has("WATCHDOG=1") })

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "RELOADING=1 after SIGHUP", 30*time.Second, func() bool { return n.has("RELOADING=1") })

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	waitFor(t, "STOPPING=1", 5*time.Second, func() bool { return n.has("STOPPING=1") })
}
