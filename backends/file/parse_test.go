package file

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseFlattensAsConfd(t *testing.T) {
	const doc = `
app:
  name: shop
  db:
    host: db.local
    port: 5432
  replicas:
    - a.local
    - b.local
  servers:
    - name: one
      port: 80
    - name: two
empty_string: ""
nothing: null
tilde: ~
bare:
bools: [yes, No, on, OFF, y, n, true, False]
ints: [0777, 0x1F, 1_000, -7, +3, 0b101, 0o17]
floats: [1.50, 1e3, .5, 3.0, -2.25, .inf, -.Inf, .NaN]
big: 18446744073709551615
quoted: ["yes", '0777', "1.50", "~"]
date: 2001-12-14
version: 1.10
text: |
  line one
  line two
"a.b c-d": dotted
1: one
`
	want := map[string]string{
		"/app/name":           "shop",
		"/app/db/host":        "db.local",
		"/app/db/port":        "5432",
		"/app/replicas/0":     "a.local",
		"/app/replicas/1":     "b.local",
		"/app/servers/0/name": "one",
		"/app/servers/0/port": "80",
		"/app/servers/1/name": "two",
		"/empty_string":       "",
		"/bools/0":            "true",
		"/bools/1":            "false",
		"/bools/2":            "true",
		"/bools/3":            "false",
		"/bools/4":            "true",
		"/bools/5":            "false",
		"/bools/6":            "true",
		"/bools/7":            "false",
		"/ints/0":             "511",
		"/ints/1":             "31",
		"/ints/2":             "1000",
		"/ints/3":             "-7",
		"/ints/4":             "3",
		"/ints/5":             "5",
		"/ints/6":             "15",
		"/floats/0":           "1.5",
		"/floats/1":           "1000",
		"/floats/2":           "0.5",
		"/floats/3":           "3",
		"/floats/4":           "-2.25",
		"/floats/5":           "+Inf",
		"/floats/6":           "-Inf",
		"/floats/7":           "NaN",
		"/big":                "18446744073709551615",
		"/quoted/0":           "yes",
		"/quoted/1":           "0777",
		"/quoted/2":           "1.50",
		"/quoted/3":           "~",
		"/date":               "2001-12-14",
		"/version":            "1.1",
		"/text":               "line one\nline two\n",
		"/a.b c-d":            "dotted",
		"/1":                  "one",
	}
	got := map[string]string{}
	if err := parse("test.yaml", []byte(doc), got); err != nil {
		t.Fatal(err)
	}
	diff(t, got, want)
}

func TestParseAnchorsAndMerges(t *testing.T) {
	const doc = `
base: &base
  host: base.local
  port: 1
extra: &extra
  port: 2
  tls: true
a:
  <<: *base
  port: 10
b:
  port: 20
  <<: *base
c:
  <<: [*extra, *base]
d: *base
`
	want := map[string]string{
		"/base/host": "base.local", "/base/port": "1",
		"/extra/port": "2", "/extra/tls": "true",
		"/a/host": "base.local", "/a/port": "10",
		// yaml.v2 (and so confd) lets a merge that comes later override an explicit key.
		"/b/host": "base.local", "/b/port": "1",
		// Of a list of merges, the earlier wins.
		"/c/host": "base.local", "/c/port": "2", "/c/tls": "true",
		"/d/host": "base.local", "/d/port": "1",
	}
	got := map[string]string{}
	if err := parse("test.yaml", []byte(doc), got); err != nil {
		t.Fatal(err)
	}
	diff(t, got, want)
}

func TestParseJSON(t *testing.T) {
	const doc = `{"app": {"db": {"host": "h", "port": 5432, "ratio": 0.25, "big": 1e6, "on": true,
	  "none": null, "list": [1, "two", {"three": 3}]}}}`
	want := map[string]string{
		"/app/db/host": "h", "/app/db/port": "5432", "/app/db/ratio": "0.25",
		"/app/db/big": "1000000", "/app/db/on": "true",
		"/app/db/list/0": "1", "/app/db/list/1": "two", "/app/db/list/2/three": "3",
	}
	got := map[string]string{}
	if err := parse("test.json", []byte(doc), got); err != nil {
		t.Fatal(err)
	}
	diff(t, got, want)
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "\n", "# only a comment\n", "~\n", "---\n"} {
		got := map[string]string{}
		if err := parse("e.yaml", []byte(doc), got); err != nil || len(got) != 0 {
			t.Errorf("parse(%q) = %v, %v; want no keys and no error", doc, got, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want []string // substrings of the error
	}{
		{"a: 1\nb: [\n", []string{"file bad.yaml", "cannot parse", "line"}},
		{"a:\n  b: 1\n c: 2\n", []string{"file bad.yaml", "line 2"}},
		{"- a\n- b\n", []string{"file bad.yaml", "line 1", "top level is a sequence"}},
		{"just a string\n", []string{"file bad.yaml", "top level is a scalar"}},
		{"a:\n  ? [x, y]\n  : z\n", []string{"file bad.yaml", "line 2", "sequence as a mapping key"}},
		{"a: !!int abc\n", []string{"file bad.yaml", "line 1", `"abc" as !!int`}},
		{"a:\n  <<: 3\n", []string{"file bad.yaml", "line 2", "merge"}},
	} {
		got := map[string]string{}
		err := parse("bad.yaml", []byte(c.doc), got)
		if err == nil {
			t.Errorf("parse(%q) succeeded with %v; want an error", c.doc, got)
			continue
		}
		if !errors.Is(err, ErrParse) {
			t.Errorf("parse(%q): %v does not wrap ErrParse", c.doc, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("parse(%q): error %q does not contain %q", c.doc, err, w)
			}
		}
	}
}

func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	err := parse("bomb.yaml", []byte(b.String()), map[string]string{})
	if !errors.Is(err, ErrParse) {
		t.Fatalf("an alias bomb gave %v; want an ErrParse error", err)
	}
}

func diff(t *testing.T, got, want map[string]string) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("missing %s (want %q)", k, w)
		} else if g != w {
			t.Errorf("%s = %q, want %q", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %q", k, g)
		}
	}
}

// TestParseSelfReference: a value that holds itself through an alias or a merge is an error
// naming the file and line, at once (it used to expand for minutes).
func TestParseSelfReference(t *testing.T) {
	for _, s := range []string{"a: &a [*a, *a]\n", "a: &a {<<: *a}\n", "a: &a {b: {<<: *a}}\n", "a: &a {b: [*a]}\n", "x: 1\na: &a {b: {c: *a}}\n"} {
		err := parse("f.yaml", []byte(s), map[string]string{})
		if err == nil || !errors.Is(err, ErrParse) || !strings.HasPrefix(err.Error(), "file f.yaml: line ") {
			t.Errorf("parse(%q) = %v, want ErrParse naming the file and line", s, err)
		}
	}
	vars := map[string]string{}
	if err := parse("f.yaml", []byte("a: &x {b: 1}\nc: *x\nd: [*x, *x]\ne: {<<: *x, f: 2}\n"), vars); err != nil || len(vars) != 6 {
		t.Errorf("aliases used twice: %v, %v", vars, err)
	}
}
