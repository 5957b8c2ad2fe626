package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// resources is how many resources reconf watches, one key each.
const resources = 20

// prefix is where the keys live: prefix/r00 … prefix/r19.
const prefix = "/fo"

// keyName is the store key of resource i, relative to prefix.
func keyName(i int) string { return fmt.Sprintf("/r%02d", i) }

// content is what resource i's file holds when its key holds version v.
func content(v int) string { return fmt.Sprintf("v=%d\n", v) }

// writeConfdir writes one resource per key: resource i renders prefix/r<i> into out/r<i>.conf.
func writeConfdir(t testing.TB, dir string) (confdir string, dests []string) {
	t.Helper()
	confdir = filepath.Join(dir, "confdir")
	out := filepath.Join(dir, "out")
	for _, d := range []string{filepath.Join(confdir, "conf.d"), filepath.Join(confdir, "templates"), out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range resources {
		name := fmt.Sprintf("r%02d", i)
		dest := filepath.Join(out, name+".conf")
		dests = append(dests, dest)
		tmpl := fmt.Sprintf("v={{getv %q}}\n", keyName(i))
		toml := fmt.Sprintf("[template]\nsrc = %q\ndest = %q\nprefix = %q\nkeys = [%q]\n", name+".tmpl", dest, prefix, keyName(i))
		if err := os.WriteFile(filepath.Join(confdir, "templates", name+".tmpl"), []byte(tmpl), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(confdir, "conf.d", name+".toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return confdir, dests
}

// write is one accepted write: key i got version v; the first attempt started at start and
// the store acknowledged it at accepted.
type write struct {
	key, version    int
	start, accepted time.Time
}

// writer updates the keys one after the other (key n%20 gets its next version), each write a
// check-and-set through one member; a failed or timed-out attempt is retried through the next
// member until the store accepts it, so writing goes on through kills and elections.
type writer struct {
	s *store

	mu       sync.Mutex
	versions [resources]int // the latest accepted version of each key (0: none yet)
	log      []write
	err      error // the writer gave up
	member   int   // the member the last write went through

	stop     chan struct{}
	done     chan struct{}
	haltOnce sync.Once
}

// attemptTimeout bounds one write attempt through one member; giveUp bounds one write.
const (
	attemptTimeout = 750 * time.Millisecond
	giveUp         = 90 * time.Second
	writeGap       = 15 * time.Millisecond // between two accepted writes
)

// seed writes version 1 of every key and returns once they are all accepted.
func (w *writer) seed(t testing.TB) {
	t.Helper()
	for i := range resources {
		if err := w.writeNext(i, nil); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

// writeNext writes key i's next version, retrying through the members in turn.
func (w *writer) writeNext(i int, stop <-chan struct{}) error {
	w.mu.Lock()
	v, m := w.versions[i]+1, w.member
	w.mu.Unlock()
	old := ""
	if v > 1 {
		old = strconv.Itoa(v - 1)
	}
	key := prefix + keyName(i)
	start := time.Now()
	var last error
	for n := 0; time.Since(start) < giveUp; n++ {
		if n > 0 {
			m = (m + 1) % len(w.s.c.Members)
			if n%len(w.s.c.Members) == 0 { // every member failed: the store is down or electing
				select {
				case <-stop:
					return errStopped
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
		last = w.s.cas(ctx, m, key, old, strconv.Itoa(v))
		cancel()
		if last == nil {
			w.mu.Lock()
			w.versions[i], w.member = v, m
			w.log = append(w.log, write{key: i, version: v, start: start, accepted: time.Now()})
			w.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("%s: write %s=%d: no member accepted it within %v: %v", w.s.name, key, v, giveUp, last)
}

var errStopped = fmt.Errorf("writer stopped")

// run writes until stopped.
func (w *writer) run() {
	defer close(w.done)
	for n := 0; ; n++ {
		select {
		case <-w.stop:
			return
		case <-time.After(writeGap):
		}
		if err := w.writeNext(n%resources, w.stop); err != nil {
			if err != errStopped {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
			return
		}
	}
}

func (w *writer) start() {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go w.run()
}

// halt stops the writer and waits for it; it fails the test if the writer gave up. It may be
// called more than once.
func (w *writer) halt(t testing.TB) {
	t.Helper()
	w.haltOnce.Do(func() { close(w.stop) })
	<-w.done
	if err := w.failed(); err != nil {
		t.Fatal(err)
	}
}

func (w *writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// firstAfter returns, for each key, the first write whose first attempt started after t0
// (ok false for a key not written since).
func (w *writer) firstAfter(t0 time.Time) (out [resources]write, ok [resources]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wr := range w.log {
		if wr.start.After(t0) && !ok[wr.key] {
			out[wr.key], ok[wr.key] = wr, true
		}
	}
	return out, ok
}

// seen is a version of a file as the recorder saw it first.
type seen struct {
	version int
	at      time.Time
}

// recorder polls the destinations and records each file's versions over time. A file that
// holds anything but a rendered version (empty, partial) or goes back to an older version is
// a violation.
type recorder struct {
	dests []string

	mu         sync.Mutex
	history    [resources][]seen
	violations []string

	stop     chan struct{}
	done     chan struct{}
	haltOnce sync.Once
}

const pollEvery = 5 * time.Millisecond

func newRecorder(dests []string) *recorder {
	r := &recorder{dests: dests, stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *recorder) run() {
	defer close(r.done)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		for i, d := range r.dests {
			b, err := os.ReadFile(d)
			if os.IsNotExist(err) {
				continue
			}
			now := time.Now()
			v, perr := parseContent(string(b))
			r.mu.Lock()
			h := r.history[i]
			switch {
			case err != nil:
				r.violations = append(r.violations, fmt.Sprintf("%s: read: %v", d, err))
			case perr != nil:
				r.violations = append(r.violations, fmt.Sprintf("%s at %s: %v", d, now.Format("15:04:05.000"), perr))
			case len(h) > 0 && v < h[len(h)-1].version:
				r.violations = append(r.violations, fmt.Sprintf("%s went back from version %d (seen %s) to %d at %s",
					d, h[len(h)-1].version, h[len(h)-1].at.Format("15:04:05.000"), v, now.Format("15:04:05.000")))
				r.history[i] = append(h, seen{v, now})
			case len(h) == 0 || v > h[len(h)-1].version:
				r.history[i] = append(h, seen{v, now})
			}
			r.mu.Unlock()
		}
	}
}

// halt stops polling. It may be called more than once.
func (r *recorder) halt() {
	r.haltOnce.Do(func() { close(r.stop) })
	<-r.done
}

// firstRenders returns when the first file appeared and when the last one did.
func (r *recorder) firstRenders() (first, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.history {
		if len(h) == 0 {
			continue
		}
		if at := h[0].at; first.IsZero() || at.Before(first) {
			first = at
		}
		last = later(last, h[0].at)
	}
	return first, last
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func parseContent(s string) (int, error) {
	n, ok := strings.CutPrefix(s, "v=")
	if !ok || !strings.HasSuffix(n, "\n") {
		return 0, fmt.Errorf("not a rendered version: %q", s)
	}
	v, err := strconv.Atoi(strings.TrimSuffix(n, "\n"))
	if err != nil || v < 1 {
		return 0, fmt.Errorf("not a rendered version: %q", s)
	}
	return v, nil
}

// current returns the latest version seen in file i (0: none).
func (r *recorder) current(i int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h := r.history[i]; len(h) > 0 {
		return h[len(h)-1].version
	}
	return 0
}

// seenAt returns when file i first showed version v or a later one (ok false: not yet).
func (r *recorder) seenAt(i, v int) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.history[i] {
		if s.version >= v {
			return s.at, true
		}
	}
	return time.Time{}, false
}

func (r *recorder) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.violations...)
}

// failover is what one event cost: each duration counts from the event.
type failover struct {
	event string
	// writable: the store accepted a write made after the event (as the writer saw it: a
	// write through a dead or frozen member waits for its attempt to time out first).
	writable time.Duration
	// first: the first file showed a write made after the event; all: every file did.
	first, all time.Duration
	// lag is the longest time from a write's acceptance until its file showed it, over the
	// first write after the event of every key: reconf's own share.
	lag time.Duration
}

func (f failover) String() string {
	return fmt.Sprintf("%-30s store writable after %6s, first file after %6s, all %d files after %6s (slowest accepted write→file %s)",
		f.event+":", ms(f.writable), ms(f.first), resources, ms(f.all), ms(f.lag))
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// measure waits until every file shows a write made after t0 and returns the figures. It fails
// the test after within, naming the files that lag.
func measure(t testing.TB, p *proc, w *writer, r *recorder, event string, t0 time.Time, within time.Duration) failover {
	t.Helper()
	f := failover{event: event}
	deadline := t0.Add(within)
	for {
		if p.exited() {
			t.Fatalf("%s: reconf exited (%v)\n%s", event, p.cmd.ProcessState, p.tail(40))
		}
		if err := w.failed(); err != nil {
			t.Fatalf("%s: %v", event, err)
		}
		firsts, ok := w.firstAfter(t0)
		var missing []string
		f.first, f.all, f.lag = 0, 0, 0
		for i := range resources {
			if !ok[i] {
				missing = append(missing, fmt.Sprintf("r%02d (no write yet)", i))
				continue
			}
			at, seenOK := r.seenAt(i, firsts[i].version)
			if !seenOK {
				missing = append(missing, fmt.Sprintf("r%02d (at %d, want %d)", i, r.current(i), firsts[i].version))
				continue
			}
			d := at.Sub(t0)
			if f.first == 0 || d < f.first {
				f.first = d
			}
			f.all = max(f.all, d)
			f.lag = max(f.lag, at.Sub(firsts[i].accepted))
		}
		if len(missing) == 0 {
			f.writable = firsts[0].accepted.Sub(t0)
			for _, wr := range firsts {
				f.writable = min(f.writable, wr.accepted.Sub(t0))
			}
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after %v not every file shows a write made since: %s\n%s", event, within, strings.Join(missing, ", "), p.tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
