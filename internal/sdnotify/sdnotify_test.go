package sdnotify

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens the unix datagram socket systemd would own and points NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no sd_notify message: %v", err)
	}
	return string(buf[:n])
}

func TestMessagesReachTheSocket(t *testing.T) {
	c := listen(t)
	n := New(nil)
	if !n.Enabled() {
		t.Fatal("notifier disabled with NOTIFY_SOCKET set")
	}
	cases := []struct {
		send func()
		want []string
	}{
		{n.Ready, []string{"READY=1"}},
		{n.Reloading, []string{"RELOADING=1", "MONOTONIC_USEC="}},
		{n.Watchdog, []string{"WATCHDOG=1"}},
		{n.Stopping, []string{"STOPPING=1"}},
		{func() { n.Status("3 resources") }, []string{"STATUS=3 resources"}},
	}
	for _, tc := range cases {
		tc.send()
		got := read(t, c)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("message %q lacks %q", got, w)
			}
		}
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New(nil)
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	n.Ready() // must not panic or block
	n.Stopping()
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if d := WatchdogInterval(); d != 0 {
		t.Fatalf("no watchdog: got %v", d)
	}
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := WatchdogInterval(); d != 15*time.Second {
		t.Fatalf("WatchdogSec=30s: got %v, want 15s", d)
	}
}
