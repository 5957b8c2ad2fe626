package backendtest

import (
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
)

// getAfterSignal pins the order a watch-fed cache must keep: the data first, then the signal.
// After each change under a watched prefix there must be a signal after which Get of that
// prefix, on the same client, shows the change. A client that signals before its Get can see
// the change leaves the runner rendering stale data until some later, unrelated write.
func (s *suite) getAfterSignal(t *testing.T) {
	b := s.client(t)
	s.skipUnlessWatcher(t, b)
	p := s.prefix("aftersignal", "app")
	w := startWatch(t, b, p)
	model := map[string]string{p + "/ready": s.establish(t, w, p+"/ready")}
	put := func(k, v string) {
		s.h.Put(t, k, v)
		model[k] = v
	}
	del := func(k string) {
		s.h.Delete(t, k)
		delete(model, k)
	}
	lookalike := p + "x/k" // shares the string prefix of p, lies outside it
	steps := []struct {
		what string
		skip string // a case name: the step is left out when the harness declares it unsupported
		do   func()
	}{
		{what: "a put of a new key", do: func() { put(p+"/new", "one") }},
		{what: "an overwrite", do: func() { put(p+"/new", "two") }},
		{what: "a put of an empty value", skip: CaseEmptyValues, do: func() { put(p+"/empty", "") }},
		{what: "an overwrite with an empty value", skip: CaseEmptyValues, do: func() { put(p+"/new", "") }},
		{what: "an overwrite of an empty value", skip: CaseEmptyValues, do: func() { put(p+"/empty", "full") }},
		{what: "a delete", do: func() { del(p + "/new") }},
		{what: "a put of a deep key", do: func() { put(p+"/x/y/z", "deep") }},
		{what: "a delete of the deep key", do: func() { del(p + "/x/y/z") }},
		{what: "a put of a key below another key", skip: CaseLeafAndChildren, do: func() { put(p+"/ready/below", "b") }},
		{what: "a delete of a key below another key", skip: CaseLeafAndChildren, do: func() { del(p + "/ready/below") }},
		{what: "a put of " + lookalike + " (outside the prefix) and then of " + p + "/marker", skip: CasePathMatching,
			do: func() {
				s.h.Put(t, lookalike, "outside")
				put(p+"/marker", "after the lookalike")
			}},
		{what: "a delete of the last key but one", do: func() { del(p + "/ready") }},
	}
	for _, st := range steps {
		if st.skip != "" && !s.supports(st.skip) {
			t.Logf("left out %s: %s unsupported: %s", st.what, st.skip, s.h.Unsupported[st.skip])
			continue
		}
		w.quiet(t)
		st.do()
		seenAfterSignal(t, w, b, p, model, st.what)
	}
}

// seenAfterSignal waits, for up to signalTimeout, for a signal after which Get(p) on b is
// exactly want; every signal that comes first is followed by one more Get. It fails t when
// no signal comes, or when the signals stop before Get shows want.
func seenAfterSignal(t *testing.T, w *watch, b backends.Backend, p string, want map[string]string, what string) {
	t.Helper()
	deadline := time.Now().Add(signalTimeout)
	signals := 0
	var last map[string]string
	for {
		left := time.Until(deadline)
		if left <= 0 || !w.wait(t, left) {
			if signals == 0 {
				t.Fatalf("no watch signal within %v after %s", signalTimeout, what)
			}
			t.Fatalf("signalled, but Get did not show %s: %d signal(s) within %v, the Get(%q) after the last one: %s",
				what, signals, signalTimeout, p, diffKV(last, want))
		}
		signals++
		last = get(t, b, p)
		for k := range last {
			if !backends.UnderPrefix(k, p) {
				t.Fatalf("after %s, Get(%q) returned %s = %s, which is not under the prefix", what, p, k, quote(last[k]))
			}
		}
		if diffKV(last, want) == "" {
			if signals > 1 {
				t.Logf("%s: Get showed it after signal %d", what, signals)
			}
			return
		}
	}
}
