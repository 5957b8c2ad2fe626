package testservers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// StandaloneTB is enough of testing.TB for this package's servers outside a test (a benchmark
// program): TempDir and Cleanup work, Fatal panics with a Fatal value the program recovers,
// logs go to stderr. Close runs the cleanups, last first. Make one with NewStandaloneTB.
type StandaloneTB struct {
	testing.TB // nil: any method not below panics, which is what we want to hear about
	label      string
	mu         sync.Mutex
	cleanups   []func()
	failed     bool
}

// Fatal is the value StandaloneTB's Fatal and Fatalf panic with.
type Fatal struct{ Msg string }

func (f Fatal) Error() string { return f.Msg }

// NewStandaloneTB returns a StandaloneTB whose Name and log lines say label.
func NewStandaloneTB(label string) *StandaloneTB { return &StandaloneTB{label: label} }

// Helper does nothing.
func (f *StandaloneTB) Helper() {}

// Name returns the label.
func (f *StandaloneTB) Name() string { return f.label }

// Failed reports whether Error, Errorf, Fatal or Fatalf was called.
func (f *StandaloneTB) Failed() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }

// TempDir makes a folder that Close removes.
func (f *StandaloneTB) TempDir() string {
	d, err := os.MkdirTemp("", "reconf-"+f.label+"-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// Cleanup registers fn for Close.
func (f *StandaloneTB) Cleanup(fn func()) {
	f.mu.Lock()
	f.cleanups = append(f.cleanups, fn)
	f.mu.Unlock()
}

// Logf writes a line to stderr.
func (f *StandaloneTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, f.label+": "+format+"\n", args...)
}

// Log writes a line to stderr.
func (f *StandaloneTB) Log(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{f.label + ":"}, args...)...)
}

// Errorf logs and marks the TB failed.
func (f *StandaloneTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	f.Logf(format, args...)
}

// Error logs and marks the TB failed.
func (f *StandaloneTB) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

// Fatalf marks the TB failed and panics with a Fatal.
func (f *StandaloneTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	panic(Fatal{fmt.Sprintf(format, args...)})
}

// Fatal marks the TB failed and panics with a Fatal.
func (f *StandaloneTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// Close runs the cleanups, last first.
func (f *StandaloneTB) Close() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// BuildReconf builds github.com/reconf/reconf/cmd/reconf (with ldflags, which may be empty)
// into a new temporary folder, the go tool's output going to stderr. It returns the binary's
// path and a func that removes the folder.
func BuildReconf(ldflags string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "reconf-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	bin := filepath.Join(dir, "reconf")
	args := []string{"build", "-o", bin}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	build := exec.Command("go", append(args, "github.com/reconf/reconf/cmd/reconf")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building reconf: %w", err)
	}
	return bin, cleanup, nil
}
