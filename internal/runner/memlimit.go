package runner

import (
	"math"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
)

// onetimeMemoryLimit is the soft limit on the Go runtime's memory that -onetime sets while the
// live heap is small. A one-shot render of a big snapshot allocates several times its live
// data in short-lived garbage (text/template calls every function by reflection); with GOGC
// alone the heap grows to twice the live data before each collection, so the peak RSS is
// about the binary plus twice the snapshot. Under the limit the collector runs a little more
// often instead: for 100,000 keys from etcd the peak RSS fell from 57 to 48 MiB for about 5%
// more CPU. The limit is lifted once the live heap passes onetimeLiveCeiling, so a store too
// big for it is collected at GOGC's pace rather than continuously.
const (
	onetimeMemoryLimit = 30 << 20
	onetimeLiveCeiling = 20 << 20
)

// gcTick is an object whose finalizer runs after each garbage collection (it holds a pointer
// so that it is never merged into a tiny allocation).
type gcTick struct{ _ *int }

// limitMemory applies onetimeMemoryLimit unless the user set a limit (GOMEMLIMIT) or turned
// the collector off (GOGC=off), and returns the function that restores the previous setting.
func limitMemory() (restore func()) {
	prev := debug.SetMemoryLimit(-1)
	if prev != math.MaxInt64 {
		return func() {}
	}
	gcPercent := debug.SetGCPercent(100)
	debug.SetGCPercent(gcPercent)
	if gcPercent < 0 {
		return func() {}
	}
	var mu sync.Mutex
	done := false
	lift := func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			done = true
			debug.SetMemoryLimit(prev)
		}
	}
	sample := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var watch func(*gcTick)
	watch = func(*gcTick) {
		mu.Lock()
		stop := done
		mu.Unlock()
		if stop {
			return
		}
		rtmetrics.Read(sample)
		if sample[0].Value.Kind() == rtmetrics.KindUint64 && sample[0].Value.Uint64() > onetimeLiveCeiling {
			lift()
			return
		}
		runtime.SetFinalizer(&gcTick{}, watch)
	}
	debug.SetMemoryLimit(onetimeMemoryLimit)
	runtime.SetFinalizer(&gcTick{}, watch)
	return lift
}
