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
