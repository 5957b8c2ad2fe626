package main

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// fakeTB is enough of testing.TB for internal/testservers outside a test: TempDir and Cleanup
// work, Fatal panics with a fatal value that run recovers, logs go to stderr.
type fakeTB struct {
	testing.TB // nil: any method not below panics, which is what we want to hear about
	name       string
	mu         sync.Mutex
	cleanups   []func()
	failed     bool
}

type fatal struct{ msg string }

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return f.name }
func (f *fakeTB) Failed() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }

func (f *fakeTB) TempDir() string {
	d, err := os.MkdirTemp("", "reconf-latency-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	f.cleanups = append(f.cleanups, fn)
	f.mu.Unlock()
}

func (f *fakeTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, f.name+": "+format+"\n", args...)
}
func (f *fakeTB) Log(args ...any) { fmt.Fprintln(os.Stderr, append([]any{f.name + ":"}, args...)...) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	f.Logf(format, args...)
}
func (f *fakeTB) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	panic(fatal{fmt.Sprintf(format, args...)})
}
func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// close runs the cleanups, last first.
func (f *fakeTB) close() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
