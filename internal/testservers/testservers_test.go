package testservers

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("TESTSERVERS_FAKE") != "" {
		fakeServer()
		return
	}
	goleak.VerifyTestMain(m)
}

// TestServers starts each server, stops it, checks it is gone, and starts it again on the same
// address. One server at a time: they share two cores with everyone else.
func TestServers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *Server
	}{
		{"etcd", Etcd},
		{"redis", Redis},
		{"zookeeper", ZooKeeper},
		{"consul", Consul},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start(t)
			addr, pid := s.Addr, s.PID()
			if pid == 0 {
				t.Fatal("PID is 0 for a running server")
			}
			if !dials(s.Addr) {
				t.Fatalf("%s does not accept connections", s.Addr)
			}
			s.Pause(t)
			waitState(t, pid, true)
			s.Resume(t)
			waitState(t, pid, false)
			s.Stop(t)
			if s.PID() != 0 {
				t.Fatalf("PID = %d after Stop, want 0", s.PID())
			}
			if dials(s.Addr) {
				t.Fatalf("%s still accepts connections after Stop", s.Addr)
			}
			s.Start(t)
			if s.Addr != addr {
				t.Fatalf("Addr changed across restart: %s → %s", addr, s.Addr)
			}
			if s.PID() == 0 || s.PID() == pid {
				t.Fatalf("PID after restart = %d (before: %d)", s.PID(), pid)
			}
		})
	}
}

// waitState waits until pid is stopped (SIGSTOP, state T) or running again; signals are
// delivered asynchronously.
func waitState(t *testing.T, pid int, stopped bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The state follows the command name in parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i > 0 && i+2 < len(b) && (b[i+2] == 'T') == stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: stopped=%v not reached within 5s: %s", pid, stopped, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dials(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
