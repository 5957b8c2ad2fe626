package testservers

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeServer runs in a child copy of the test binary (see TestMain): the first start in a
// data folder reports a taken port and exits; later starts listen on the port given.
func fakeServer() {
	dir, _ := os.Getwd()
	marker := filepath.Join(dir, "attempted")
	if _, err := os.Stat(marker); err != nil {
		_ = os.WriteFile(marker, nil, 0o644)
		fmt.Println("listen tcp: bind: address already in use")
		os.Exit(1)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Args[len(os.Args)-1])
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		c.Close()
	}
}

// TestBindRace: a first start that loses its port to another process is retried on fresh
// ports, and the server ends up running.
func TestBindRace(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := launch(t, spec{
		name:   "fake",
		binary: exe,
		roles:  []string{"client"},
		env:    []string{"TESTSERVERS_FAKE=1"},
		args: func(_ string, p map[string]int) []string {
			return []string{"-test.run=^$", strconv.Itoa(p["client"])}
		},
		ready: func(ctx context.Context, s *Server) error {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", s.Addr)
			if err != nil {
				return err
			}
			return c.Close()
		},
		timeout: 10 * time.Second,
	})
	if n := strings.Count(s.Logs(), "=== "); n != 2 {
		t.Errorf("%d starts, want 2 (one lost race, one retry):\n%s", n, s.Logs())
	}
	if !dials(s.Addr) {
		t.Errorf("%s does not accept connections", s.Addr)
	}
}
