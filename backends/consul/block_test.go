package consul

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/consul/api"
)

// fakeQuery answers at once (no blocking) with the index and fingerprint it is given, or an
// error while failing is set; it counts the queries and records the wait indexes asked for.
type fakeQuery struct {
	mu      sync.Mutex
	index   uint64
	fp      uint64
	failing bool
	count   int
	waits   []uint64
}

func (f *fakeQuery) query(_ context.Context, q *api.QueryOptions) (uint64, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	f.waits = append(f.waits, q.WaitIndex)
	if f.failing {
		return 0, 0, errors.New("boom")
	}
	return f.index, f.fp, nil
}

// set changes the answers and returns (and resets) the query count.
func (f *fakeQuery) set(index, fp uint64, failing bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index, f.fp, f.failing = index, fp, failing
	n := f.count
	f.count = 0
	return n
}

// runBlock runs block on f in the synctest bubble until the returned stop is called.
func runBlock(t *testing.T, f *fakeQuery) (chan struct{}, func()) {
	c := &Client{cfg: Config{Logger: quiet, BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second}.withDefaults()}
	ctx, cancel := context.WithCancel(t.Context())
	changed := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() { c.block(ctx, "test", changed, f.query, nil); close(done) }()
	return changed, func() { cancel(); <-done }
}

func signalled(changed chan struct{}) bool {
	select {
	case <-changed:
		return true
	default:
		return false
	}
}

// A store whose blocking queries return at once (flapping) must not make us spin: queries
// start MinQueryGap apart once the burst is spent.
func TestBlockDoesNotSpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeQuery{index: 7, fp: 1}
		_, stop := runBlock(t, f)
		defer stop()
		time.Sleep(time.Second) // virtual time
		synctest.Wait()
		if n, want := f.set(7, 1, false), int(time.Second/MinQueryGap)+QueryBurst; n > want+1 || n < want-1 {
			t.Errorf("%d queries in 1s against a store that answers at once; want about %d", n, want)
		}
	})
}

func TestBlockSignals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeQuery{index: 7, fp: 1}
		changed, stop := runBlock(t, f)
		defer stop()
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if !signalled(changed) {
			t.Fatal("no signal once the query was in place")
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if signalled(changed) {
			t.Fatal("signal from unchanged answers")
		}

		f.set(9, 1, false) // the index moved for a write elsewhere
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if signalled(changed) {
			t.Error("signal when the index moved but the entries did not change")
		}

		f.set(10, 2, false)
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if !signalled(changed) {
			t.Error("no signal when the entries changed")
		}

		f.set(3, 2, false) // the store was rebuilt: the index went backwards
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if !signalled(changed) {
			t.Error("no signal when the index went backwards")
		}
		f.mu.Lock()
		waits := append([]uint64(nil), f.waits...)
		f.mu.Unlock()
		sawReset := false
		for i := 1; i < len(waits); i++ {
			sawReset = sawReset || (waits[i-1] == 10 && waits[i] == 0)
		}
		if !sawReset {
			t.Errorf("wait indexes %v: want a query at 0 after the index went backwards", waits)
		}
	})
}

// Errors back off, and the first answer after them signals (changes may have been missed).
func TestBlockBacksOffAndSignalsAfterRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeQuery{index: 7, fp: 1}
		changed, stop := runBlock(t, f)
		defer stop()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if !signalled(changed) {
			t.Fatal("no signal once the query was in place")
		}
		f.set(7, 1, true)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		// Backoff from 100ms doubling to a 1s cap: about 0.1+0.2+0.4+0.8 then 1s steps.
		if n := f.set(7, 1, false); n > 17 || n < 10 {
			t.Errorf("%d failing queries in 10s with backoff 100ms..1s; want 10..17 (jitter shortens waits by up to 20%%)", n)
		}
		if signalled(changed) {
			t.Error("signal while failing")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !signalled(changed) {
			t.Error("no signal after the store answered again")
		}
	})
}

// After a quiet spell, queries that follow each other at once are not delayed (up to the burst),
// then are held to one per gap, and the bucket refills while queries block.
func TestTokenBucket(t *testing.T) {
	b := tokenBucket{burst: 3, every: 50 * time.Millisecond}
	now := time.Unix(1000, 0)
	for i := range 3 {
		if w := b.take(now); w != 0 {
			t.Fatalf("query %d of the burst waited %v", i, w)
		}
	}
	if w := b.take(now); w != 50*time.Millisecond {
		t.Fatalf("query past the burst waited %v, want 50ms", w)
	}
	now = now.Add(50 * time.Millisecond) // it started after its wait
	if w := b.take(now); w != 50*time.Millisecond {
		t.Fatalf("next back-to-back query waited %v, want 50ms", w)
	}
	now = now.Add(10 * time.Second) // a long blocking query refills the bucket
	for i := range 3 {
		if w := b.take(now); w != 0 {
			t.Fatalf("after a long wait, query %d waited %v", i, w)
		}
	}
}

// After a failed query the next one asks with WaitIndex 0: a restarted agent has a lower
// index, and waiting on the old one would hide changes for the whole WaitTime.
func TestBlockForgetsIndexAfterError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeQuery{index: 700, fp: 1}
		changed, stop := runBlock(t, f)
		defer stop()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		signalled(changed) // the first answer's signal
		f.set(700, 1, true)
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		f.mu.Lock()
		f.waits = nil
		f.mu.Unlock()
		f.set(3, 2, false) // restarted: lower index, other data
		time.Sleep(2 * time.Second)
		synctest.Wait()
		f.mu.Lock()
		waits := append([]uint64(nil), f.waits...)
		f.mu.Unlock()
		if len(waits) == 0 || waits[0] != 0 {
			t.Fatalf("first query after the error waited on index %v, want 0", waits)
		}
		if !signalled(changed) {
			t.Fatal("no signal after the agent came back")
		}
	})
}
