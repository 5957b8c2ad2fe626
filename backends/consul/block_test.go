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
	block   time.Duration // how long each query waits before it answers
	count   int
	waits   []uint64
}

func (f *fakeQuery) query(ctx context.Context, q *api.QueryOptions) (uint64, uint64, error) {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(block):
		}
	}
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

// agentless is a Client with no agent behind it, for block run over a fake query (with no
// agent API it starts no prober and reads no agent configuration).
func agentless() *Client {
	return &Client{cfg: Config{Logger: quiet, BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second}.withDefaults()}
}

// runBlock runs block on f in the synctest bubble until the returned stop is called.
func runBlock(t *testing.T, f *fakeQuery) (chan struct{}, func()) {
	c := agentless()
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
// start MinQueryGap apart once the burst is spent, and further apart once that has lasted
// QueryGapHold.
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
		// 29s more: the gap doubles every QueryGapHold (2s) from 15ms: 1s from 14s on.
		time.Sleep(29 * time.Second)
		synctest.Wait()
		n := f.set(7, 1, false)
		want := 0.0
		for from := time.Second; from < 30*time.Second; from += 100 * time.Millisecond {
			gap := min(MinQueryGap<<(from/QueryGapHold), MaxQueryGap)
			want += float64(100*time.Millisecond) / float64(gap)
		}
		if float64(n) > want*1.1+2 || float64(n) < want*0.9-2 {
			t.Errorf("%d queries over the next 29s against a store that answers at once; want about %.0f", n, want)
		}
		t.Logf("a store that answers at once: %.0f queries over 30s (at 20 a second: 600)", want+float64(time.Second/MinQueryGap)+QueryBurst)
		time.Sleep(MaxQueryGap)
		synctest.Wait()
		if n := f.set(7, 1, false); n != 1 {
			t.Errorf("%d queries in one MaxQueryGap, want 1", n)
		}
	})
}

// Once a query blocks (the store went quiet), the gap is MinQueryGap again.
func TestBlockGapShrinksAfterQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeQuery{index: 7, fp: 1}
		_, stop := runBlock(t, f)
		defer stop()
		time.Sleep(20 * time.Second) // answers at once: the gap grew to MaxQueryGap
		synctest.Wait()
		f.mu.Lock()
		f.block = time.Second // the store goes quiet: each query waits a second
		f.mu.Unlock()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		f.mu.Lock()
		f.block = 0 // busy again
		f.mu.Unlock()
		f.set(7, 1, false)
		time.Sleep(time.Second)
		synctest.Wait()
		if n, want := f.set(7, 1, false), int(time.Second/MinQueryGap)+QueryBurst; n > want+2 || n < want-2 {
			t.Errorf("%d queries in the first second of answers at once after a quiet spell; want about %d", n, want)
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

// While answers keep coming at once the gap stays every for hold, then doubles for each
// further hold up to max; an answer that took 4 × every or longer resets it.
func TestTokenBucketGrows(t *testing.T) {
	const every, hold, most = 10 * time.Millisecond, time.Second, 100 * time.Millisecond
	b := tokenBucket{burst: 2, every: every, hold: hold, max: most}
	now := time.Unix(1000, 0)
	start := now
	var waits []time.Duration
	for now.Sub(start) < 4*time.Second { // every query answered at once
		w := b.take(now)
		waits = append(waits, w)
		now = now.Add(w)
	}
	at := func(d time.Duration) time.Duration { // the wait of the query starting about d in
		var in time.Duration
		for _, w := range waits {
			if in >= d {
				return w
			}
			in += w
		}
		return 0
	}
	for _, c := range []struct{ in, want time.Duration }{{500 * time.Millisecond, every}, {1500 * time.Millisecond, 2 * every},
		{2500 * time.Millisecond, 4 * every}, {3500 * time.Millisecond, 8 * every}} {
		if got := at(c.in); got != c.want {
			t.Errorf("gap %v into answers at once = %v, want %v", c.in, got, c.want)
		}
	}
	for range 10 * hold / every {
		now = now.Add(b.take(now))
	}
	if w := b.take(now); w != most {
		t.Errorf("gap long after = %v, want the cap %v", w, most)
	}
	now = now.Add(most)
	now = now.Add(4*every - time.Nanosecond) // an answer a little sooner than 4 × every
	if w := b.take(now); w == 0 {
		t.Errorf("a query answered after %v found a token waiting", 4*every-time.Nanosecond)
	}
	now = now.Add(b.take(now) + 4*every) // answered after 4 × every: the store was quiet
	if w := b.take(now); w != 0 {
		t.Errorf("after an answer that took 4 × every the query waited %v", w)
	}
	b.take(now) // the burst's second token
	if w := b.take(now); w != every {
		t.Errorf("after a quiet spell the gap is %v, want %v", w, every)
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
