package testutil

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f)
}

func TestEventually(t *testing.T) {
	n := 0
	if d := Eventually(t, time.Second, "third call", func() bool { n++; return n == 3 }); d <= 0 || n != 3 {
		t.Fatalf("took %v after %d calls", d, n)
	}
	f := &fakeT{}
	func() {
		defer func() { recover() }()
		Eventually(f, 30*time.Millisecond, "never", func() bool { return false })
	}()
	if f.failed != "never: not within 30ms" {
		t.Fatalf("failure message %q", f.failed)
	}
}

func TestUntil(t *testing.T) {
	n := 0
	if d := Until(t, time.Second, time.Millisecond, func() error {
		if n++; n < 3 {
			return fmt.Errorf("call %d", n)
		}
		return nil
	}); d <= 0 || n != 3 {
		t.Fatalf("took %v after %d calls", d, n)
	}
	f := &fakeT{}
	n = 0
	func() {
		defer func() { recover() }()
		Until(f, 30*time.Millisecond, 5*time.Millisecond, func() error { n++; return fmt.Errorf("seen %d", n) })
	}()
	if f.failed != fmt.Sprintf("seen %d", n) || n < 2 {
		t.Fatalf("failure message %q after %d calls, want the last error", f.failed, n)
	}
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { fmt.Fprint(&b, "x") })
	}
	wg.Wait()
	if b.String() != "xxxxxxxxxx" {
		t.Fatalf("got %q", b.String())
	}
}
