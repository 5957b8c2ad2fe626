package testservers

import (
	"context"
	"errors"
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
		{"dnsmasq", func(t testing.TB) *Server { return DNS(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start(t)
			addr, pid := s.Addr, s.PID()
			if want := fmt.Sprintf("127.0.0.1:%d", s.Port()); addr != want {
				t.Fatalf("Addr %s, Port %d", addr, s.Port())
			}
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

// TestDNS: the DNS server answers the SRV records it was given, ranked by priority, and says a
// name it does not hold does not exist (rather than failing or asking elsewhere).
func TestDNS(t *testing.T) {
	name := "_svc._tcp." + DNSDomain
	s := DNS(t, SRV{Name: name, Target: "localhost", Port: 2, Priority: 20, Weight: 1},
		SRV{Name: name, Target: "localhost", Port: 1, Priority: 10, Weight: 1})
	r := Resolver(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, addrs, err := r.LookupSRV(ctx, "", "", name+".")
	if err != nil {
		t.Fatalf("LookupSRV: %v", err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, fmt.Sprintf("%s:%d/%d", a.Target, a.Port, a.Priority))
	}
	if strings.Join(got, " ") != "localhost.:1/10 localhost.:2/20" {
		t.Errorf("records %v, want localhost.:1/10 localhost.:2/20", got)
	}
	_, _, err = r.LookupSRV(ctx, "", "", "_none._tcp."+DNSDomain+".")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("unknown name: %v, want not found", err)
	}
}
