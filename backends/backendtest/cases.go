package backendtest

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
)

func (s *suite) emptyPrefix(t *testing.T) {
	b := s.client(t)
	// A sibling exists so that "nothing there" is not "nothing anywhere".
	s.h.Put(t, s.prefix("empty", "sibling", "k"), "v")
	wantKV(t, "Get of a prefix with nothing under it", get(t, b, s.prefix("empty", "nothing")), nil)
	wantKV(t, "Get of a missing key below an existing one",
		get(t, b, s.prefix("empty", "sibling", "k", "below")), nil)
}

func (s *suite) pathMatching(t *testing.T) {
	p := func(parts ...string) string { return s.prefix(append([]string{"paths"}, parts...)...) }
	db := map[string]string{
		p("app", "db", "host"): "db.local",
		p("app", "db", "port"): "5432",
	}
	all := map[string]string{
		p("app", "db-replica", "host"): "replica.local",
		p("app", "dbx"):                "x",
		p("app", "name"):               "shop",
	}
	maps.Copy(all, db)
	outside := map[string]string{p("apple", "k"): "not app", p("other", "k"): "o"}
	s.putAll(t, all)
	s.putAll(t, outside)
	b := s.client(t)

	wantKV(t, `Get("/app/db") (must not match /app/db-replica or /app/dbx)`, get(t, b, p("app", "db")), db)
	wantKV(t, `Get("/app/db/")`, get(t, b, p("app", "db")+"/"), db)
	wantKV(t, `Get("/app/db/*")`, get(t, b, p("app", "db", "*")), db)
	wantKV(t, `Get("/app") (must not match /apple)`, get(t, b, p("app")), all)
	wantKV(t, `Get("/app/*")`, get(t, b, p("app", "*")), all)
	wantKV(t, `Get of a key itself`, get(t, b, p("app", "db", "host")),
		map[string]string{p("app", "db", "host"): "db.local"})
	wantKV(t, `Get of a partial name ("/app/d")`, get(t, b, p("app", "d")), nil)
	wantKV(t, `Get of a partial key name ("/app/db/ho")`, get(t, b, p("app", "db", "ho")), nil)
	// Without the leading '/', a prefix means the same.
	wantKV(t, `Get of the prefix without its leading "/"`, get(t, b, p("app", "db")[1:]), db)
}

func (s *suite) rootPrefix(t *testing.T) {
	mine := map[string]string{s.prefix("root", "a"): "1", s.prefix("root", "b", "c"): "2"}
	s.putAll(t, mine)
	b := s.client(t)
	for _, root := range []string{"/", "/*"} {
		got := get(t, b, root)
		for k, v := range mine {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("Get(%q): %s = %q (present %v), want %q", root, k, g, ok, v)
			}
		}
		for k := range got {
			if len(k) == 0 || k[0] != '/' {
				t.Errorf("Get(%q): key %q is not an absolute path", root, k)
			}
		}
	}
}

func (s *suite) severalPrefixes(t *testing.T) {
	p := func(parts ...string) string { return s.prefix(append([]string{"several"}, parts...)...) }
	a := map[string]string{p("a", "x"): "ax", p("a", "y", "z"): "ayz"}
	c := map[string]string{p("c", "x"): "cx"}
	s.putAll(t, a)
	s.putAll(t, c)
	s.h.Put(t, p("b", "x"), "bx")
	b := s.client(t)
	union := maps.Clone(a)
	maps.Copy(union, c)
	wantKV(t, "Get of two disjoint prefixes", get(t, b, p("a"), p("c")), union)
	wantKV(t, "Get of overlapping prefixes", get(t, b, p("a"), p("a", "y"), p("c", "x")), union)
	wantKV(t, "Get of a prefix and an empty one", get(t, b, p("a"), p("nothing")), a)
	wantKV(t, "Get of the same prefix twice", get(t, b, p("c"), p("c")), c)
}

func (s *suite) manyKeys(t *testing.T) {
	want := make(map[string]string, 1000)
	for i := range 1000 {
		want[s.prefix("many", fmt.Sprintf("k%04d", i))] = fmt.Sprintf("value %d", i)
	}
	s.putAll(t, want)
	b := s.client(t)
	wantKV(t, "Get of 1,000 keys", get(t, b, s.prefix("many")), want)
}

func (s *suite) keyCharacters(t *testing.T) {
	for _, c := range keyChars {
		t.Run(c.name, func(t *testing.T) {
			s.skipIfUnsupported(t, CaseKeyCharacters+"/"+c.name)
			p := s.prefix("chars", c.name)
			want := map[string]string{
				p + "/a" + c.char + "b":          "in the middle",
				p + "/x" + c.char + "y/z":        "in a folder name",
				p + "/end" + c.char:              "at the end",
				p + "/m" + c.char + c.char + "n": "twice",
			}
			s.putAll(t, want)
			b := s.client(t)
			wantKV(t, fmt.Sprintf("Get of keys holding %q", c.char), get(t, b, p), want)
			wantKV(t, "Get of a key holding it", get(t, b, p+"/a"+c.char+"b"),
				map[string]string{p + "/a" + c.char + "b": "in the middle"})
		})
	}
}

func (s *suite) unicodeValues(t *testing.T) {
	p := s.prefix("unicode")
	want := map[string]string{
		p + "/latin":    "héllo wörld",
		p + "/cjk":      "日本語のテキスト",
		p + "/emoji":    "ship it 🚀",
		p + "/rtl":      "שלום",
		p + "/newlines": "line one\nline two\n",
		p + "/spaces":   "  padded  ",
		p + "/quotes":   `"double" 'single' \back`,
		p + "/equals":   "a=b=c",
		p + "/json":     `{"k": [1, 2.5, null]}`,
		p + "/yamlish":  "yes",
		p + "/number":   "007",
	}
	s.putAll(t, want)
	b := s.client(t)
	wantKV(t, "Get of unicode and tricky values", get(t, b, p), want)
}

func (s *suite) emptyValues(t *testing.T) {
	p := s.prefix("emptyvalues")
	want := map[string]string{p + "/empty": "", p + "/full": "x", p + "/dir/empty": ""}
	s.putAll(t, want)
	b := s.client(t)
	wantKV(t, "Get of empty values", get(t, b, p), want)
	wantKV(t, "Get of one empty value", get(t, b, p+"/empty"), map[string]string{p + "/empty": ""})
}

func (s *suite) leafAndChildren(t *testing.T) {
	p := s.prefix("leafdir")
	want := map[string]string{p + "/db": "leaf", p + "/db/host": "child", p + "/db/a/b": "grandchild"}
	s.putAll(t, want)
	b := s.client(t)
	wantKV(t, "Get of a key that has children", get(t, b, p+"/db"), want)
}

func (s *suite) delete(t *testing.T) {
	p := s.prefix("delete")
	s.putAll(t, map[string]string{p + "/a": "1", p + "/b": "2", p + "/dir/c": "3"})
	b := s.client(t)
	wantKV(t, "Get before delete", get(t, b, p),
		map[string]string{p + "/a": "1", p + "/b": "2", p + "/dir/c": "3"})
	s.h.Delete(t, p+"/a")
	wantKV(t, "Get after deleting one key", get(t, b, p),
		map[string]string{p + "/b": "2", p + "/dir/c": "3"})
	s.h.Delete(t, p+"/dir/c")
	s.h.Delete(t, p+"/b")
	wantKV(t, "Get after deleting every key", get(t, b, p), nil)
	s.h.Put(t, p+"/a", "again")
	wantKV(t, "Get after putting a deleted key back", get(t, b, p), map[string]string{p + "/a": "again"})
}

func (s *suite) concurrent(t *testing.T) {
	p := s.prefix("concurrent")
	want := map[string]string{}
	for i := range 20 {
		want[fmt.Sprintf("%s/k%d", p, i)] = fmt.Sprint(i)
	}
	s.putAll(t, want)
	b := s.client(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8*10)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				got, err := b.Get(ctx, []string{p})
				cancel()
				switch {
				case err != nil:
					errs <- err
				case !maps.Equal(got, want):
					errs <- fmt.Errorf("got %d keys, want %d", len(got), len(want))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Get(%q): %v", p, err)
	}
}
