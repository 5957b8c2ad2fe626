package consul

import (
	"context"
	"errors"
	"maps"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewKVData(t *testing.T) {
	d := newKVData([]entry{
		{key: "/a", value: "1"},
		{key: "/a", folder: true}, // "a/" after "a": the real key still wins
		{key: "/a/b", folder: true},
		{key: "/a/b-c", value: "x"}, // sent before "a/b/" by Consul, sorts after "/a/b"
		{key: "/a/c", value: "old", odd: true},
		{key: "/a/c", value: "new"}, // the last real key wins
		{key: "/a/d", value: ""},
	})
	wantK := []string{"/a", "/a/b", "/a/b-c", "/a/c", "/a/d"}
	wantV := []string{"1", "", "x", "new", ""}
	if !slices.Equal(d.keys, wantK) || !slices.Equal(d.values, wantV) || !d.odd {
		t.Errorf("newKVData = %q %q odd %v; want %q %q odd true", d.keys, d.values, d.odd, wantK, wantV)
	}
	same := newKVData([]entry{{key: "/a", value: "1"}, {key: "/a/b", value: ""}, {key: "/a/b-c", value: "x"}, {key: "/a/c", value: "new"}, {key: "/a/d", value: ""}})
	if same.fp != d.fp || same.odd {
		t.Errorf("the same content: fp %x odd %v, want fp %x odd false", same.fp, same.odd, d.fp)
	}
	for _, other := range [][]entry{
		{{key: "/a", value: "1"}},
		{{key: "/a", value: "1/"}, {key: "/a/b", value: ""}, {key: "/a/b-c", value: "x"}, {key: "/a/c", value: "new"}, {key: "/a/d", value: ""}},
		{{key: "/a", value: "1"}, {key: "/a/b", value: ""}, {key: "/a/b-c", value: "x"}, {key: "/a/c", value: "new"}, {key: "/a/e", value: ""}},
	} {
		if newKVData(other).fp == d.fp {
			t.Errorf("other content %v has the same fingerprint", other)
		}
	}
	if e := newKVData(nil); len(e.keys) != 0 || e.fp == d.fp {
		t.Errorf("empty answer: %q, fp %x", e.keys, e.fp)
	}
}

// tcpPair returns both ends of a loopback TCP connection, closed when the test ends.
func tcpPair(t *testing.T) (ours, theirs net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	ours, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	theirs = <-accepted
	if theirs == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	return ours, theirs
}

func data(kv ...string) *kvData {
	var es []entry
	for i := 0; i < len(kv); i += 2 {
		es = append(es, entry{key: kv[i], value: kv[i+1]})
	}
	return newKVData(es)
}

// live registers a serving mirror of prefix with d at index on s.
func live(t *testing.T, s *mirrorSet, prefix string, index uint64, d *kvData) (*mirror, net.Conn) {
	ours, theirs := tcpPair(t)
	m := &mirror{prefix: prefix}
	m.setConn(ours)
	m.publish(index, d)
	s.add(m)
	return m, theirs
}

func TestMirrorServes(t *testing.T) {
	var s mirrorSet
	const ttl = time.Minute
	if _, ok := s.get([]string{"/n"}, ttl, time.Time{}); ok {
		t.Fatal("served with no mirrors")
	}
	a, _ := live(t, &s, "/n", 10, data("/n", "root", "/n/db/host", "old", "/n/dbx", "x", "/n/z", "z"))
	b, _ := live(t, &s, "/n/db", 12, data("/n/db/host", "new"))

	check := func(what string, roots []string, want map[string]string) {
		t.Helper()
		got, ok := s.get(roots, ttl, time.Time{})
		if want == nil {
			if ok {
				t.Errorf("%s: served %q, want a server read", what, got)
			}
			return
		}
		if !ok || !maps.Equal(got, want) {
			t.Errorf("%s: %q (served %v), want %q", what, got, ok, want)
			return
		}
		keys, values, ok := s.getSorted(roots, ttl, time.Time{})
		wantK := slices.Sorted(maps.Keys(want))
		var wantV []string
		for _, k := range wantK {
			wantV = append(wantV, want[k])
		}
		if !ok || !slices.Equal(keys, wantK) || !slices.Equal(values, wantV) {
			t.Errorf("%s: sorted %q %q (served %v), want %q %q", what, keys, values, ok, wantK, wantV)
		}
	}
	check("the watched prefix", []string{"/n"}, map[string]string{"/n": "root", "/n/db/host": "old", "/n/dbx": "x", "/n/z": "z"})
	check("the nested watch is newer", []string{"/n/db"}, map[string]string{"/n/db/host": "new"})
	check("a key", []string{"/n/z"}, map[string]string{"/n/z": "z"})
	check("a partial name", []string{"/n/d"}, map[string]string{})
	check("two prefixes", []string{"/n/db", "/n/dbx"}, map[string]string{"/n/db/host": "new", "/n/dbx": "x"})
	check("not covered", []string{"/m"}, nil)
	check("one of two not covered", []string{"/m", "/n/z"}, nil)

	a.publish(13, data("/n/db/host", "newer"))
	check("the outer watch is newer now", []string{"/n/db"}, map[string]string{"/n/db/host": "newer"})
	a.stop()
	check("the newest watch failed", []string{"/n/db"}, nil)
	check("the only watch failed", []string{"/n"}, nil)
	a.publish(14, data("/n/db/host", "newer"))
	b.close()
	s.remove(b)
	check("after the nested watch ended", []string{"/n/db"}, map[string]string{"/n/db/host": "newer"})

	// Returned maps and slices are copies.
	got, _ := s.get([]string{"/n"}, ttl, time.Time{})
	got["/n/db/host"] = "changed"
	keys, values, _ := s.getSorted([]string{"/n"}, ttl, time.Time{})
	keys[0], values[0] = "/zzz", "changed"
	check("after the caller changed what it got", []string{"/n"}, map[string]string{"/n/db/host": "newer"})

	// Past the TTL the mirror is not served, unless the agent was heard from since.
	old := a.cur.Load()
	a.cur.Store(&view{index: old.index, at: time.Now().Add(-time.Hour), data: old.data})
	if _, ok := s.get([]string{"/n"}, ttl, time.Time{}); ok {
		t.Error("served past the TTL")
	}
	if _, ok := s.get([]string{"/n"}, ttl, time.Now().Add(-2*ttl)); ok {
		t.Error("served past the TTL with the agent last heard from before it")
	}
	if _, ok := s.get([]string{"/n"}, ttl, time.Now()); !ok {
		t.Error("not served past its own answer's TTL with the agent heard from just now")
	}
	a.close()
	check("after close", []string{"/n"}, nil)
	a.publish(15, data())
	check("a publish after close", []string{"/n"}, nil)
}

// Watches that have not answered yet, or failed before their first answer, serve nothing and
// hide nothing.
func TestMirrorNotAnswered(t *testing.T) {
	var s mirrorSet
	s.add(&mirror{prefix: "/w"}) // registered, no answer yet
	failed := &mirror{prefix: "/w"}
	failed.stop() // failed before its first answer
	s.add(failed)
	if _, ok := s.get([]string{"/w"}, time.Minute, time.Now()); ok {
		t.Error("served with no answer")
	}
	live(t, &s, "/w", 4, data("/w/k", "v"))
	if kv, ok := s.get([]string{"/w"}, time.Minute, time.Time{}); !ok || kv["/w/k"] != "v" {
		t.Errorf("get = %q, %v; want the answering watch's data", kv, ok)
	}
}

// Keys of the root, and of prefixes whose keys interleave in sort order.
func TestMirrorServesRootAndInterleaved(t *testing.T) {
	var s mirrorSet
	live(t, &s, "/", 3, data("/a", "1", "/a-b", "2", "/a-b/c", "3", "/a/x", "4", "/b", "5"))
	keys, values, ok := s.getSorted([]string{"/a", "/a-b"}, time.Minute, time.Time{})
	if want := []string{"/a", "/a-b", "/a-b/c", "/a/x"}; !ok || !slices.Equal(keys, want) || !slices.Equal(values, []string{"1", "2", "3", "4"}) {
		t.Errorf("getSorted(/a, /a-b) = %q %q %v, want %q", keys, values, ok, want)
	}
	kv, ok := s.get([]string{"/"}, time.Minute, time.Time{})
	if !ok || len(kv) != 5 {
		t.Errorf("get(/) = %q %v", kv, ok)
	}
}

// A mirror holding a key whose Consul name does not start with its path serves only its own
// prefix: a list of a prefix below may not return that key.
func TestMirrorOddKeys(t *testing.T) {
	var s mirrorSet
	live(t, &s, "/o", 3, newKVData([]entry{{key: "/o/a/b", value: "v", odd: true}}))
	if _, ok := s.get([]string{"/o"}, time.Minute, time.Time{}); !ok {
		t.Error("the watched prefix itself not served")
	}
	if _, ok := s.get([]string{"/o/a"}, time.Minute, time.Time{}); ok {
		t.Error("a prefix below served from a mirror with odd keys")
	}
}

// A connection the agent closed (it died) stops the mirror at once.
func TestMirrorConnClosed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the TCP state is read on Linux only")
	}
	var s mirrorSet
	m, theirs := live(t, &s, "/c", 3, data("/c/k", "v"))
	if _, ok := s.get([]string{"/c"}, time.Minute, time.Time{}); !ok {
		t.Fatal("not served with the connection open")
	}
	theirs.Close()
	if _, ok := s.get([]string{"/c"}, time.Minute, time.Time{}); ok {
		t.Error("served after the agent closed the connection")
	}
	ours, _ := tcpPair(t)
	m.setConn(ours)
	if _, ok := s.get([]string{"/c"}, time.Minute, time.Time{}); !ok {
		t.Error("not served on a new open connection")
	}
	ours.Close()
	if _, ok := s.get([]string{"/c"}, time.Minute, time.Time{}); ok {
		t.Error("served after we closed the connection")
	}
}

// recorder is an observer that records what block told it and whether a signal was pending
// at that moment.
type recorder struct {
	changed chan struct{}
	events  []string
}

func (r *recorder) note(e string) {
	if len(r.changed) > 0 {
		e += " (after a signal)"
	}
	r.events = append(r.events, e)
}
func (r *recorder) answered(uint64, bool) { r.note("answered") }
func (r *recorder) failed()               { r.note("failed") }

func (r *recorder) take() []string {
	e := r.events
	r.events = nil
	return e
}

// block tells the observer of every outcome before it signals: the mirror holds an answer
// before the caller hears of it, and stops at once on an error or an index reset.
func TestBlockObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeQuery{index: 7, fp: 1}
		c := agentless()
		ctx, cancel := context.WithCancel(t.Context())
		rec := &recorder{changed: make(chan struct{}, 1)}
		done := make(chan struct{})
		go func() { c.block(ctx, "test", rec.changed, f.query, rec); close(done) }()
		defer func() { cancel(); <-done }()
		step := func(what string, d time.Duration, index, fp uint64, failing bool, wantSignal bool, want string) {
			t.Helper()
			f.set(index, fp, failing)
			time.Sleep(d) // virtual time
			synctest.Wait()
			events := rec.take()
			// The fake answers every query at once: the first outcome comes before the
			// signal, later ones (the same answer again) after it.
			if len(events) == 0 || events[0] != want || slices.ContainsFunc(events, func(e string) bool { return !strings.HasPrefix(e, want) }) {
				t.Errorf("%s: observer heard %q, want %q first (before any signal) and nothing else", what, events, want)
			}
			if got := signalled(rec.changed); got != wantSignal {
				t.Errorf("%s: signalled %v, want %v", what, got, wantSignal)
			}
		}
		step("first answer", 300*time.Millisecond, 7, 1, false, true, "answered")
		step("unchanged", 300*time.Millisecond, 7, 1, false, false, "answered")
		step("changed", 300*time.Millisecond, 9, 2, false, true, "answered")
		step("failing", 300*time.Millisecond, 9, 2, true, false, "failed")
		step("recovered", 3*time.Second, 9, 2, false, true, "answered") // after the backoff (≤ 1s)
		// The index goes backwards: reset, then the next answer re-primes.
		f.set(3, 2, false)
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		events := rec.take()
		if len(events) < 2 || events[0] != "failed" || !strings.HasPrefix(events[1], "answered") {
			t.Errorf("index reset: observer heard %q, want failed then answered", events)
		}
		if !signalled(rec.changed) {
			t.Error("no signal after an index reset")
		}
	})
}

// An answer that changes nothing keeps the data the mirror serves; a changed one replaces it.
func TestKVWatchKeepsUnchangedData(t *testing.T) {
	ours, _ := tcpPair(t)
	w := &kvWatch{m: &mirror{prefix: "/k"}}
	w.m.setConn(ours)
	first := data("/k/a", "1")
	w.pending = first
	w.answered(5, false)
	w.pending = data("/k/a", "1")
	w.answered(6, false)
	if v := w.m.cur.Load(); v.data != first || v.index != 6 {
		t.Errorf("unchanged answer: serving %p at %d, want the first data %p at 6", v.data, v.index, first)
	}
	second := data("/k/a", "2")
	w.pending = second
	w.answered(7, true)
	if v := w.m.cur.Load(); v.data != second {
		t.Errorf("changed answer: serving %p, want %p", v.data, second)
	}
	w.failed()
	if v := w.m.cur.Load(); v.data != nil || v.index != 7 {
		t.Errorf("after a failure: serving %p at %d, want nothing at 7", v.data, v.index)
	}
	w.pending = second
	w.answered(8, false) // the first answer after a failure is served
	if v := w.m.cur.Load(); v.data != second {
		t.Errorf("after recovery: serving %p, want %p", v.data, second)
	}
}

// Without a Watch nothing is kept: GetSorted declines and every Get asks the agent.
func TestNoMirrorWithoutWatch(t *testing.T) {
	c, err := New(Config{Address: "127.0.0.1:1", Logger: quiet, RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.GetSorted(t.Context(), []string{"/x"}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("GetSorted without a watch: %v, want errors.ErrUnsupported", err)
	}
	if _, err := c.Get(t.Context(), []string{"/x"}); err == nil {
		t.Error("Get from a closed port succeeded")
	}
	if n := c.reads.Load(); n != 1 {
		t.Errorf("%d server reads, want 1", n)
	}
	if c.mirrors.list.Load() != nil {
		t.Error("a mirror was registered without a Watch")
	}
}
