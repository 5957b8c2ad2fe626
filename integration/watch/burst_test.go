package watch

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/runner"
)

// Burst sizes: burstWrites writes spread over burstKeys keys.
const (
	burstKeys   = 10
	burstWrites = 1000
	// Reload bounds for one burst. With wait = "50ms:500ms" (burstWait) a burst shorter than
	// waitMax collapses into at most maxReloadsWait reloads; a longer one (a slow store, a
	// loaded machine) may add one reload per waitMax it lasted, and one per pause of waitMin
	// or more between two writes the store acknowledged, no more. Without wait, reconf's
	// -min-interval throttle (runner.throttle, default 200ms) renders a burst at its first
	// write, at most once while it lasts and once it is over: targetReloadsNoWait reloads for
	// a burst of up to (BurstGrowth + BurstMaxPeriod) × minInterval (4 s), one more per
	// BurstMaxPeriod × minInterval beyond; a pause of BurstQuiet or more between two writes
	// the store acknowledged may look like the end and cost one more (at most one per
	// minInterval).
	//
	// notifySlack allows for what the writers cannot see: a store's change notifications
	// reach reconf on their own connection, and a loaded machine (a Java GC in ZooKeeper, a
	// 2-core CI runner) can open a gap of waitMin in that stream while the writers' acks kept
	// coming. Each such gap may cost one reload more. (CI once saw 4 where 3 were allowed.)
	burstWait           = `"50ms:500ms"`
	waitMin             = 50 * time.Millisecond
	waitMax             = 500 * time.Millisecond
	maxReloadsWait      = 3
	targetReloadsNoWait = 3
	minInterval         = runner.DefaultMinInterval
	notifySlack         = 2
	// quiet is how long the reload counter must stay still before a burst counts as settled.
	quiet = 1500 * time.Millisecond
)

// burstWant is what pairsTemplate renders once every key holds its last value.
func burstWant(last string) string {
	var b strings.Builder
	for k := range burstKeys {
		fmt.Fprintf(&b, "k%d=%s\n", k, last)
	}
	return b.String()
}

// burstWriters is how many writers run at once: stores that fsync each write (etcd,
// ZooKeeper) take a burst this fast only from many concurrent clients.
const burstWriters = 50

// burst writes burstWrites values over burstKeys keys under prefix/w as fast as the store
// takes them and returns how long it took. All but the last write to each key run from
// burstWriters writers at once (values "x<i>", in no particular order); then every key gets
// its final value "last" at once, so the final state is known.
//
// It also returns how many times the store went quiet for at least gap between two
// acknowledged writes (a store stalling on fsync): a debounce with min = gap may render once
// per such pause, and the caller allows for it.
func burst(t *testing.T, s *store, prefix, last string, gap time.Duration) (took time.Duration, pauses int) {
	t.Helper()
	start := time.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		acked []time.Time
	)
	put := func(key, value string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.put(ctx, key, value); err != nil {
			return fmt.Errorf("%s: put %s: %w", s.name, key, err)
		}
		mu.Lock()
		acked = append(acked, time.Now())
		mu.Unlock()
		return nil
	}
	run := func(jobs <-chan int, writers int, value func(i int) string) {
		for range writers {
			wg.Go(func() {
				for i := range jobs {
					if err := put(fmt.Sprintf("%s/w/k%d", prefix, i%burstKeys), value(i)); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
	}
	jobs := make(chan int)
	run(jobs, burstWriters, func(i int) string { return fmt.Sprintf("x%d", i) })
	for i := range burstWrites - burstKeys {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	final := make(chan int)
	run(final, burstKeys, func(int) string { return last })
	for k := range burstKeys {
		final <- k
	}
	close(final)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	sort.Slice(acked, func(i, j int) bool { return acked[i].Before(acked[j]) })
	for i := 1; i < len(acked); i++ {
		if acked[i].Sub(acked[i-1]) >= gap {
			pauses++
		}
	}
	return time.Since(start), pauses
}

// settle waits until the reload counter has not moved for quiet and returns its value.
func settle(t *testing.T, p *proc, counter string, within time.Duration) int {
	t.Helper()
	n, since := countLines(counter), time.Now()
	eventually(t, within, "reload counter still moving\n"+p.tail(20), func() bool {
		if m := countLines(counter); m != n {
			n, since = m, time.Now()
		}
		return time.Since(since) >= quiet
	})
	return n
}

// TestBurst writes 1,000 values over 10 keys in each real store while reconf watches two
// resources, one debounced with wait = "50ms:500ms" and one not, and counts their reloads.
func TestBurst(t *testing.T) {
	e := newEnv(t)
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) {
			s := e.get(t, name)
			dir := t.TempDir()
			confdir := filepath.Join(dir, "confdir")
			type res struct{ name, prefix, wait, dest, counter string }
			rs := []res{{name: "debounced", prefix: "/burst-wait", wait: "wait = " + burstWait}, {name: "eager", prefix: "/burst-now"}}
			for i := range rs {
				r := &rs[i]
				r.dest = filepath.Join(dir, r.name+".conf")
				r.counter = filepath.Join(dir, r.name+".reloads")
				addResource(t, confdir, r.name, fmt.Sprintf("dest = %q\nprefix = %q\nkeys = [\"/w\"]\nreload_cmd = \"echo reload >> %s\"\n%s",
					r.dest, r.prefix, r.counter, r.wait), pairsTemplate)
				for k := range burstKeys {
					s.Put(t, fmt.Sprintf("%s/w/k%d", r.prefix, k), "v0")
				}
			}
			p := startReconf(t, dir, watchArgs(s, confdir, "-log-level", "info")...)
			for _, r := range rs {
				waitFile(t, p, r.dest, burstWant("v0"), startDeadline, r.name+": first render")
			}
			const last = "final"
			for _, r := range rs {
				before := settle(t, p, r.counter, 20*time.Second)
				gap := runner.BurstQuiet
				if r.wait != "" {
					gap = waitMin
				}
				took, pauses := burst(t, s, r.prefix, last, gap)
				waitFile(t, p, r.dest, burstWant(last), changeDeadline, r.name+": final values after the burst")
				reloads := settle(t, p, r.counter, 30*time.Second) - before
				t.Logf("%s %s (%s): %d writes over %d keys in %v (%d pauses ≥ %v between acknowledged writes) → %d reloads",
					name, r.name, strings.TrimPrefix(r.wait, "wait = "), burstWrites, burstKeys, took.Round(time.Millisecond), pauses, gap, reloads)
				limit := targetReloadsNoWait + min(pauses, int(took/minInterval)+1) + notifySlack
				if span := (runner.BurstGrowth + runner.BurstMaxPeriod) * minInterval; took > span {
					limit += int((took-span)/(runner.BurstMaxPeriod*minInterval)) + 1
				}
				if r.wait != "" {
					limit = max(maxReloadsWait, pauses+int((took+waitMax-1)/waitMax)+1+notifySlack)
				}
				if reloads < 1 || reloads > limit {
					t.Errorf("%s %s: %d reloads for a burst of %d writes that took %v; want 1..%d",
						name, r.name, reloads, burstWrites, took.Round(time.Millisecond), limit)
				}
			}
		})
	}
}
