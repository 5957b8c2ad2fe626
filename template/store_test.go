package template

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The oracle below restates memkv's algorithms the slow, obvious way (a scan of every key per
// call), so that the indexed store can be checked against it on awkward key sets.

func oracleTerms(p string) []string { return strings.Split(path.Clean(p), "/") }

func oracleHasTermPrefix(prefix, terms []string) bool {
	return len(terms) >= len(prefix) && slices.Equal(terms[:len(prefix)], prefix)
}

func oracleLs(m map[string]string, p string) []string {
	seen := map[string]bool{}
	prefix := oracleTerms(p)
	for k := range m {
		if k == p {
			seen[path.Base(k)] = true
			continue
		}
		if oracleHasTermPrefix(prefix, oracleTerms(path.Dir(k))) {
			seen[strings.Split(stripKey(k, p), "/")[0]] = true
		}
	}
	return sortedSet(seen)
}

func oracleLsdir(m map[string]string, p string) []string {
	seen := map[string]bool{}
	prefix := oracleTerms(p)
	for k := range m {
		if !strings.HasPrefix(k, p) {
			continue
		}
		terms := oracleTerms(path.Dir(k))
		if oracleHasTermPrefix(prefix, terms) && len(terms) > len(prefix) {
			seen[terms[len(prefix)]] = true
		}
	}
	return sortedSet(seen)
}

func oracleGets(m map[string]string, pattern string) (KVPairs, error) {
	ks := KVPairs{}
	for k, v := range m {
		ok, err := path.Match(pattern, k)
		if err != nil {
			return nil, err
		}
		if ok {
			ks = append(ks, KVPair{k, v})
		}
	}
	sort.Sort(ks)
	return ks, nil
}

var awkwardKeys = []string{
	"/", "/a", "/a/", "/a/b", "/a/b/c", "/a/b/c/d", "/a//x", "/a/./y", "/ab", "/ab/c", "/a-b/c",
	"/a.b/c", "/top", "rel", "rel/x", "/x/../a/z", "/node10", "/node5", "/n/node10/a", "/n/node5/a",
	"/n/node5", "/", "/é/ü", "/a/b/c/", "/a/q/../b/x/y", "/a/b/z/w",
}

var awkwardPaths = []string{
	"", "/", ".", "/a", "/a/", "/a//", "/a/b", "/a/b/", "/ab", "/a/b/c", "/a/b/c/d", "/nope", "rel",
	"/n", "/n/", "/a/./b", "/a//b", "a", "/x/..", "//", "/é",
}

var awkwardPatterns = []string{
	"/*", "/a/*", "/a/*/*", "/*/*", "*", "/a/b/c", "/n/node?/a", "/n/node[15]*", "/[", "/a/\\*",
	"rel/*", "/a/b/c/", "/?", "",
}

func TestStoreMatchesOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		m := map[string]string{}
		for _, k := range awkwardKeys {
			if round == 0 || r.IntN(2) == 0 {
				m[k] = fmt.Sprintf("v%d", r.IntN(5))
			}
		}
		for _, s := range []*store{newStore(m), sortedStore(m)} {
			for _, p := range awkwardPaths {
				if got, want := s.ls(p), oracleLs(m, p); !slices.Equal(got, want) {
					t.Fatalf("keys %v: ls %q = %q, want %q", sortedKeysOf(m), p, got, want)
				}
				if got, want := s.lsdir(p), oracleLsdir(m, p); !slices.Equal(got, want) {
					t.Fatalf("keys %v: lsdir %q = %q, want %q", sortedKeysOf(m), p, got, want)
				}
			}
			for _, pat := range awkwardPatterns {
				got, err := s.gets(pat)
				want, werr := oracleGets(m, pat)
				if (err != nil) != (werr != nil) || !slices.Equal(got, want) {
					t.Fatalf("keys %v: gets %q = %v, %v; want %v, %v", sortedKeysOf(m), pat, got, err, want, werr)
				}
			}
			for _, k := range append(awkwardPaths, awkwardKeys...) {
				v, ok := m[k]
				if got, err := s.getv(k); got != v || (err == nil) != ok || s.exists(k) != ok {
					t.Fatalf("keys %v: getv %q = %q, %v; exists %v; want %q, %v", sortedKeysOf(m), k, got, err, s.exists(k), v, ok)
				}
			}
		}
	}
}

// keysOf returns the keys of m sorted and their values, as Data.Keys and Data.Values take them.
func keysOf(m map[string]string) (keys, values []string) {
	keys = sortedKeysOf(m)
	values = make([]string, len(keys))
	for i, k := range keys {
		values[i] = m[k]
	}
	return keys, values
}

func sortedStore(m map[string]string) *store { return newSortedStore(keysOf(m)) }

// TestStoreMatchesOracleRandomTrees uses clean keys only (the case where ls and lsdir jump over
// whole subtrees), with names chosen so that siblings sort between a directory and its
// children ("n1", "n1-b", "n1.c", "n1/x").
func TestStoreMatchesOracleRandomTrees(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	names := []string{"a", "z", "n1", "n1-b", "n1.c", "n10", "n", "n0"}
	for round := 0; round < 300; round++ {
		m := map[string]string{}
		var dirs []string
		for i := 0; i < 1+r.IntN(12); i++ {
			k := "/" + names[r.IntN(2)]
			dirs = append(dirs, k, k+"/")
			for d, depth := 0, r.IntN(4); d < depth; d++ {
				k += "/" + names[r.IntN(len(names))]
				dirs = append(dirs, k, k+"/")
			}
			if r.IntN(10) == 0 {
				k += "/" // a consul folder key
			}
			m[k] = "v"
		}
		for _, s := range []*store{newStore(m), sortedStore(m)} {
			for _, p := range append(dirs, "/", "", "/n1-", "/zz") {
				if got, want := s.ls(p), oracleLs(m, p); !slices.Equal(got, want) {
					t.Fatalf("keys %v: ls %q = %q, want %q", sortedKeysOf(m), p, got, want)
				}
				if got, want := s.lsdir(p), oracleLsdir(m, p); !slices.Equal(got, want) {
					t.Fatalf("keys %v: lsdir %q = %q, want %q", sortedKeysOf(m), p, got, want)
				}
				pat := p + "/*"
				got, err := s.gets(pat)
				want, werr := oracleGets(m, pat)
				if (err != nil) != (werr != nil) || !slices.Equal(got, want) {
					t.Fatalf("keys %v: gets %q = %v, %v; want %v, %v", sortedKeysOf(m), pat, got, err, want, werr)
				}
			}
		}
	}
}

func sortedKeysOf(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestStoreAnswersAreCopies checks that in-place functions (reverse, sortByLength) cannot
// change a memoized answer.
func TestStoreAnswersAreCopies(t *testing.T) {
	m := map[string]string{"/a/x": "2", "/a/y": "1", "/a/z/w": "3"}
	for _, s := range []*store{newStore(m), sortedStore(m)} {
		reverse(s.ls("/a"))
		reverse(s.lsdir("/"))
		vs, _ := s.getvs("/a/*")
		reverse(vs)
		ks, _ := s.gets("/a/*")
		reverse(ks)
		if got := s.ls("/a"); !slices.Equal(got, []string{"x", "y", "z"}) {
			t.Errorf("ls after reverse = %q", got)
		}
		if got, _ := s.getvs("/a/*"); !slices.Equal(got, []string{"1", "2"}) {
			t.Errorf("getvs after reverse = %q", got)
		}
		if got, _ := s.gets("/a/*"); got[0].Key != "/a/x" {
			t.Errorf("gets after reverse = %v", got)
		}
		if got, _ := s.getv("/a/x"); got != "2" {
			t.Errorf("getv after reverse = %q, the store changed", got)
		}
	}
}

// TestDirOf: the fast path agrees with path.Dir and path.Clean.
func TestDirOf(t *testing.T) {
	for _, k := range []string{"/", "/a", "/a/b", "/a/b/", "//a", "/a//b", "/a/./b", "/a/../b", "/.", "/..",
		"/a/.", "/a/..", "a/b", "", "/a.b/c..d/.e", "/...", "/a/b/c/d"} {
		dir, clean := dirOf(k)
		c := path.Clean(k)
		if dir != path.Dir(k) || clean != (k == c || k == c+"/") {
			t.Errorf("dirOf(%q) = %q, %v; want %q, %v", k, dir, clean, path.Dir(k), k == c || k == c+"/")
		}
	}
}
