package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
)

// Harness adapts one backend and its real server to the suite. Every case writes under a
// prefix of its own, so one server serves the whole suite.
type Harness struct {
	// New returns a fresh client of the backend under test; the suite closes it.
	New func(t *testing.T) backends.Backend
	// Put writes key (an absolute '/'-separated path) = value through the store's own client.
	Put func(t *testing.T, key, value string)
	// Delete removes key through the store's own client.
	Delete func(t *testing.T, key string)
	// Stop and Start stop the real server and start it again on the same address and data.
	// Nil means the backend has no server (file, env); the recovery case is then not run.
	Stop, Start func(t *testing.T)
	// Unsupported lists case names the backend cannot express, each with the reason
	// (e.g. env cannot hold keys with spaces). Keep it short: every entry is a visible gap.
	Unsupported map[string]string
	// IgnoreGoroutines names functions (as in goleak.IgnoreAnyFunction) whose goroutines the
	// NoLeak case tolerates: background goroutines a client library starts once per process
	// and never stops. Every entry needs a comment saying which library and why.
	IgnoreGoroutines []string
}

// Case names: the keys of Harness.Unsupported. A subcase is "Case/sub", e.g.
// "KeyCharacters/underscore".
const (
	CaseEmptyPrefix     = "EmptyPrefix"
	CasePathMatching    = "PathMatching"
	CaseRootPrefix      = "RootPrefix"
	CaseSeveralPrefixes = "SeveralPrefixes"
	CaseManyKeys        = "ManyKeys"
	CaseKeyCharacters   = "KeyCharacters"
	CaseUnicodeValues   = "UnicodeValues"
	CaseEmptyValues     = "EmptyValues"
	CaseLeafAndChildren = "LeafAndChildren"
	CaseDelete          = "Delete"
	CaseConcurrent      = "Concurrent"
	CaseWatch           = "Watch"
	CaseWatchCancel     = "WatchCancel"
	CaseGetAfterSignal  = "GetAfterSignal"
	CaseWatchConverges  = "WatchConverges"
	CaseNoLeak          = "NoLeak"
	CaseRecovery        = "Recovery"
)

// keyChars are the subcases of KeyCharacters: name → the character put inside a key name.
var keyChars = []struct{ name, char string }{
	{"dash", "-"}, {"underscore", "_"}, {"dot", "."}, {"space", " "},
}

// caseNames lists every name Unsupported may hold.
func caseNames() []string {
	names := []string{CaseEmptyPrefix, CasePathMatching, CaseRootPrefix, CaseSeveralPrefixes,
		CaseManyKeys, CaseKeyCharacters, CaseUnicodeValues, CaseEmptyValues, CaseLeafAndChildren,
		CaseDelete, CaseConcurrent, CaseWatch, CaseWatchCancel, CaseGetAfterSignal,
		CaseWatchConverges, CaseNoLeak, CaseRecovery}
	for _, c := range keyChars {
		names = append(names, CaseKeyCharacters+"/"+c.name)
	}
	return names
}

// Timeouts of the suite. Generous: CI machines are slow and shared.
const (
	opTimeout     = 20 * time.Second // one Get
	signalTimeout = 15 * time.Second // a write reaching a watch
	settle        = 300 * time.Millisecond
	silence       = 500 * time.Millisecond // no signal for unrelated writes
	cancelTimeout = 2 * time.Second
)

// suite is one Run: the harness and the base prefix unique to it.
type suite struct {
	h    Harness
	base string
}

// Run runs every conformance case against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.Put == nil || h.Delete == nil {
		t.Fatal("backendtest: Harness.New, Put and Delete are required")
	}
	if (h.Stop == nil) != (h.Start == nil) {
		t.Fatal("backendtest: set both Harness.Stop and Harness.Start, or neither")
	}
	known := caseNames()
	for name, reason := range h.Unsupported {
		if !slices.Contains(known, name) {
			t.Errorf("backendtest: Unsupported names unknown case %q (known: %s)", name, strings.Join(known, ", "))
		}
		if strings.TrimSpace(reason) == "" {
			t.Errorf("backendtest: Unsupported[%q] gives no reason", name)
		}
	}
	s := &suite{h: h, base: "/bt" + token()}
	t.Logf("backendtest: base prefix %s", s.base)

	s.run(t, CaseEmptyPrefix, s.emptyPrefix)
	s.run(t, CasePathMatching, s.pathMatching)
	s.run(t, CaseRootPrefix, s.rootPrefix)
	s.run(t, CaseSeveralPrefixes, s.severalPrefixes)
	s.run(t, CaseManyKeys, s.manyKeys)
	s.run(t, CaseKeyCharacters, s.keyCharacters)
	s.run(t, CaseUnicodeValues, s.unicodeValues)
	s.run(t, CaseEmptyValues, s.emptyValues)
	s.run(t, CaseLeafAndChildren, s.leafAndChildren)
	s.run(t, CaseDelete, s.delete)
	s.run(t, CaseConcurrent, s.concurrent)
	s.run(t, CaseWatch, s.watch)
	s.run(t, CaseWatchCancel, s.watchCancel)
	s.run(t, CaseGetAfterSignal, s.getAfterSignal)
	s.run(t, CaseWatchConverges, s.watchConverges)
	s.run(t, CaseNoLeak, s.noLeak)
	s.run(t, CaseRecovery, s.recovery)
}

// run runs one case as a subtest, skipped with its reason when the harness declares it
// unsupported.
func (s *suite) run(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		s.skipIfUnsupported(t, name)
		f(t)
	})
}

func (s *suite) skipIfUnsupported(t *testing.T, name string) {
	t.Helper()
	if reason, ok := s.h.Unsupported[name]; ok {
		t.Skipf("backendtest: %s unsupported by this backend: %s", name, reason)
	}
}

// supports reports whether the harness can express what the named case tests; cases that
// mix several shapes of data use it to leave out the shapes a store cannot hold.
func (s *suite) supports(name string) bool {
	_, unsupported := s.h.Unsupported[name]
	return !unsupported
}

// prefix returns the case's own prefix joined with parts.
func (s *suite) prefix(parts ...string) string {
	return s.base + "/" + strings.Join(parts, "/")
}

// client returns a fresh client closed when the case ends.
func (s *suite) client(t *testing.T) backends.Backend {
	t.Helper()
	b := s.h.New(t)
	if b == nil {
		t.Fatal("backendtest: Harness.New returned nil")
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// get calls Get with a bounded context and fails the test on error.
func get(t *testing.T, b backends.Backend, prefixes ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	kv, err := b.Get(ctx, prefixes)
	if err != nil {
		t.Fatalf("Get(%q): %v", prefixes, err)
	}
	return kv
}

// wantKV fails unless got is exactly want (nil and empty maps are equal).
func wantKV(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if d := diffKV(got, want); d != "" {
		t.Errorf("%s: %s", what, d)
	}
}

// diffKV returns "" if got is exactly want (nil and empty maps are equal), else what differs,
// one key a line.
func diffKV(got, want map[string]string) string {
	if len(got) == 0 && len(want) == 0 {
		return ""
	}
	if maps.Equal(got, want) {
		return ""
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok {
			b.WriteString("\n  missing " + k + " = " + quote(want[k]))
		} else if g != want[k] {
			b.WriteString("\n  " + k + " = " + quote(g) + ", want " + quote(want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			b.WriteString("\n  unexpected " + k + " = " + quote(got[k]))
		}
	}
	return fmt.Sprintf("got %d keys, want %d:%s", len(got), len(want), b.String())
}

func quote(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return "\"" + strings.ReplaceAll(s, "\n", `\n`) + "\""
}

// putAll writes kv through the harness.
func (s *suite) putAll(t *testing.T, kv map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		s.h.Put(t, k, kv[k])
	}
}

// token returns 8 random lowercase hex digits: a base prefix every store can hold as a key
// name (env maps it to upper case and back).
func token() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// eventually polls f until it returns true or timeout passes, and reports whether it did.
func eventually(timeout, every time.Duration, f func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
}
