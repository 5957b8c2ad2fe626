package backendtest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
)

// The workload of WatchConverges.
const (
	convergeOps      = 300
	convergeTimeout  = 30 * time.Second // from the last write until every Get agrees with the model
	convergeEvery    = 200 * time.Millisecond
	convergeReadStep = 10 * time.Millisecond // pace of the reader running beside the writes
)

// SeedEnv names the environment variable that fixes the seed of WatchConverges, to replay a
// failure (the seed is logged on every run).
const SeedEnv = "BACKENDTEST_SEED"

// convergeInside are the names, relative to the watched prefix, the random writes use:
// siblings sharing a string prefix (a, ab, abc), keys below keys (a, a/b, a/b/c), and depths
// from one to five.
var convergeInside = []string{
	"a", "ab", "abc", "a/b", "a/bc", "a/b/c", "a/b/cd", "ab/c", "b", "b/a", "b/a/b",
	"c/d/e/f", "c/d/e/g", "c/d/ef",
	"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9",
	"d/k0", "d/k1", "d/k2", "d/k3", "d/k4",
	"e/f/g/h/k0", "e/f/g/h/k1", "e/f/g/h/k2",
}

// convergeOutside are names beside the watched prefix "app" that the random writes use too:
// lookalikes sharing its string prefix, a partial name of it, and an unrelated folder.
var convergeOutside = []string{"appx/k", "appx/a/b", "ap", "ap/p", "apq", "other/k", "other/a/b", "other/c"}

// watchConverges writes quickly and at random under a watched prefix and beside it, then
// polls until Get on the watching client agrees with a model of the store: for the prefix, a
// folder of it, every key written, several prefixes at once (watched and not) and a nested
// pair. A watch-fed cache that drops, reorders or misfiles events never converges.
func (s *suite) watchConverges(t *testing.T) {
	b := s.client(t)
	s.skipUnlessWatcher(t, b)
	p := s.prefix("converge", "app")
	out := func(name string) string { return s.prefix("converge", name) }
	w := startWatch(t, b, p)
	model := map[string]string{p + "/ready": s.establish(t, w, p+"/ready")}

	keys, parents := s.convergeKeys(t, p, out)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(SeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
		seed = n
	}
	t.Logf("seed %d (replay with %s=%d)", seed, SeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	empties := s.supports(CaseEmptyValues)

	r := startReader(t, b, p)
	start := time.Now()
	puts, dels := 0, 0
	for i := range convergeOps {
		k := keys[rng.IntN(len(keys))]
		if _, ok := model[k]; ok && rng.IntN(3) == 0 && !hasBelow(model, k) {
			// A key with keys below it is never deleted: ZooKeeper cannot delete a node that
			// has children.
			s.h.Delete(t, k)
			delete(model, k)
			dels++
			continue
		}
		v := "v" + strconv.Itoa(i)
		// An empty value only on a key that never has keys below it: in ZooKeeper an empty
		// node with children is a folder, not a key.
		if empties && !parents[k] && rng.IntN(8) == 0 {
			v = ""
		}
		s.h.Put(t, k, v)
		model[k] = v
		puts++
	}
	// A fixed tail, whatever the seed: a key put and deleted, and a key outside the watch.
	s.h.Put(t, p+"/k0", "tail")
	s.h.Delete(t, p+"/k0")
	delete(model, p+"/k0")
	s.h.Put(t, out("other/k"), "tail")
	model[out("other/k")] = "tail"
	puts, dels = puts+2, dels+1
	written := time.Now()
	t.Logf("%d puts and %d deletes over %d keys in %v; %d keys left, %d under %s",
		puts, dels, len(keys), time.Since(start).Round(time.Millisecond), len(model),
		len(backends.Filter(model, []string{p})), p)
	for _, e := range r.stop() {
		t.Error(e)
	}

	checks := [][]string{
		{p},
		{p + "/a"},
		{p, out("other"), out("appx")}, // several prefixes, one watched
		{p + "/a", p},                  // a nested pair
		{p + "/a", p + "/ab", p + "/k1"},
		{out("ap")}, // must not match the watched "app"
	}
	for _, k := range keys {
		checks = append(checks, []string{k})
	}
	var fails []string
	converged := eventually(convergeTimeout, convergeEvery, func() bool {
		fails = checkModel(b, model, checks)
		return len(fails) == 0
	})
	if !converged {
		t.Errorf("Get did not agree with the store within %v of the last write (seed %d); %d of %d Gets differ:\n%s",
			convergeTimeout, seed, len(fails), len(checks), strings.Join(fails, "\n"))
	} else {
		t.Logf("converged %v after the last write", time.Since(written).Round(time.Millisecond))
	}
}

// convergeKeys returns the keys the random writes use, as absolute paths, and which of them
// have others below them. Keys below keys are left out when the harness cannot hold them.
func (s *suite) convergeKeys(t *testing.T, p string, out func(string) string) (keys []string, parents map[string]bool) {
	t.Helper()
	for _, n := range convergeInside {
		keys = append(keys, p+"/"+n)
	}
	for _, n := range convergeOutside {
		keys = append(keys, out(n))
	}
	parents = map[string]bool{}
	for _, k := range keys {
		for _, o := range keys {
			if o != k && backends.UnderPrefix(o, k) {
				parents[k] = true
			}
		}
	}
	if !s.supports(CaseLeafAndChildren) {
		t.Logf("leaving out keys with keys below them: %s unsupported: %s",
			CaseLeafAndChildren, s.h.Unsupported[CaseLeafAndChildren])
		keys = slices.DeleteFunc(keys, func(k string) bool { return parents[k] })
		parents = map[string]bool{}
	}
	return keys, parents
}

// hasBelow reports whether model holds a key strictly below k.
func hasBelow(model map[string]string, k string) bool {
	for o := range model {
		if o != k && backends.UnderPrefix(o, k) {
			return true
		}
	}
	return false
}

// checkModel runs Get for each set of prefixes and returns, for each that differs from
// model, what differs.
func checkModel(b backends.Backend, model map[string]string, checks [][]string) []string {
	var fails []string
	for _, prefixes := range checks {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		got, err := b.Get(ctx, prefixes)
		cancel()
		what := fmt.Sprintf("Get(%q)", prefixes)
		if err != nil {
			fails = append(fails, what+": "+err.Error())
			continue
		}
		if d := diffKV(got, backends.Filter(model, backends.Dedupe(prefixes))); d != "" {
			fails = append(fails, what+": "+d)
		}
	}
	return fails
}

// reader calls Get on a watched prefix while the writes run: Get must keep working, and
// must never return a key outside the prefix, while the watch feeds it.
type reader struct {
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	mu    sync.Mutex
	reads int
	errs  []string
}

// startReader starts the reader; it is stopped when the case ends, if not before.
func startReader(t *testing.T, b backends.Backend, p string) *reader {
	r := &reader{done: make(chan struct{})}
	t.Cleanup(func() { r.stop() })
	r.wg.Go(func() {
		tick := time.NewTicker(convergeReadStep)
		defer tick.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			got, err := b.Get(ctx, []string{p})
			cancel()
			r.mu.Lock()
			r.reads++
			if err != nil {
				r.errs = append(r.errs, fmt.Sprintf("Get(%q) during the writes: %v", p, err))
			}
			for _, k := range slices.Sorted(maps.Keys(got)) {
				if !backends.UnderPrefix(k, p) {
					r.errs = append(r.errs, fmt.Sprintf("Get(%q) during the writes returned %s, which is not under the prefix", p, k))
				}
			}
			r.mu.Unlock()
		}
	})
	return r
}

// stop ends the reader and returns its first few complaints.
func (r *reader) stop() []string {
	r.once.Do(func() { close(r.done) })
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) > 5 {
		return append(r.errs[:5], fmt.Sprintf("… and %d more in %d reads", len(r.errs)-5, r.reads))
	}
	return r.errs
}
