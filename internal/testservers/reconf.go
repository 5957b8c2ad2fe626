package testservers

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// RunWithReconf is a TestMain for packages that test the real reconf binary: it builds
// github.com/reconf/reconf/cmd/reconf (with ldflags, which may be empty) into a temporary
// folder, stores the binary's path in *bin, runs the tests, removes the folder and, when the
// tests passed, fails the run if goroutines leaked (ignoring opts). It exits the process.
func RunWithReconf(m *testing.M, bin *string, ldflags string, opts ...goleak.Option) {
	os.Exit(runWithReconf(m, bin, ldflags, opts...))
}

func runWithReconf(m *testing.M, bin *string, ldflags string, opts ...goleak.Option) int {
	b, cleanup, err := BuildReconf(ldflags)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	*bin = b
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
	}
	return code
}
