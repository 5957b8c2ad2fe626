package runner

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestLimitMemory: -onetime's soft memory limit is set, lifted once the live heap passes the
// ceiling (a big store must not make the collector run continuously), restored by the returned
// function, and never set over a limit the user chose.
func TestLimitMemory(t *testing.T) {
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("test process has a memory limit already: %d", got)
	}
	restore := limitMemory()
	if got := debug.SetMemoryLimit(-1); got != onetimeMemoryLimit {
		t.Fatalf("limit = %d, want %d", got, onetimeMemoryLimit)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("limit after restore = %d, want none", got)
	}

	restore = limitMemory()
	defer restore()
	live := make([][]byte, 0, 64)
	for range 2 * onetimeLiveCeiling / (1 << 20) {
		b := make([]byte, 1<<20)
		b[0] = 1
		live = append(live, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) != math.MaxInt64 {
		if time.Now().After(deadline) {
			t.Fatalf("limit still %d with %d MiB live", debug.SetMemoryLimit(-1), len(live))
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(live)

	debug.SetMemoryLimit(1 << 30) // as GOMEMLIMIT=1GiB
	defer debug.SetMemoryLimit(math.MaxInt64)
	r := limitMemory()
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("limit = %d over the user's 1 GiB", got)
	}
	r()
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("restore changed the user's limit to %d", got)
	}
}
