package testutil

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Eventually polls cond every 10ms until it holds and returns how long that took; it fails
// the test if cond does not hold within the deadline.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Until(t, within, 10*time.Millisecond, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("%s: not within %v", what, within)
	})
}

// Until polls cond every `every` until it returns nil and returns how long that took. If cond
// has not returned nil within the deadline, it fails the test with cond's last error, which
// should say what was seen. cond may fail the test itself on a state that must never show.
func Until(t testing.TB, within, every time.Duration, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%v", err)
		}
		time.Sleep(every)
	}
}

// SyncBuffer is an io.Writer (a log sink) safe for concurrent writes.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
