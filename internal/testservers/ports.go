package testservers

import (
	"net"
	"sync"
	"testing"
)

var (
	portsMu sync.Mutex
	handed  = map[int]bool{} // ports this test binary already gave out
)

// FreePort returns a loopback TCP port that was free a moment ago and that this process has not
// handed out before. Another process may still take it before the caller binds; servers started
// here retry with fresh ports when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	return freePort(t)
}

func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testservers: free port: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handed[p] {
			handed[p] = true
			return p
		}
	}
	t.Fatalf("testservers: free port: no unused port after 100 tries")
	return 0
}
