package template

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/reconf/reconf/backends"
)

// diffStats counts what the differential checks saw.
type diffStats struct {
	cases    int // renders compared
	eligible int // templates Parse compiled for the fast executor
	fast     int // renders the fast executor completed (no fallback)
	errs     int // renders text/template failed
	missed   []string
}

// checkSame renders d with text/template only, with Render (fast executor and fallback), and
// with the fast executor alone. The first two must give the same bytes or the same error
// text; when the fast executor alone completes, text/template must have succeeded with the
// same bytes.
func checkSame(t *testing.T, st *diffStats, label string, tp *Template, d Data) {
	t.Helper()
	ctx := context.Background()
	slow, slowErr := tp.render(ctx, d, nil)
	got, err := tp.Render(ctx, d)
	st.cases++
	if slowErr != nil {
		st.errs++
	}
	if !bytes.Equal(got, slow) || fmt.Sprint(err) != fmt.Sprint(slowErr) {
		t.Errorf("%s: Render differs from text/template:\n fast: %q, %v\n slow: %q, %v", label, got, err, slow, slowErr)
	}
	if tp.fast == nil {
		return
	}
	st.eligible++
	var st2 *store
	if d.Keys != nil {
		st2 = newSortedStore(d.Keys, d.Values)
	} else {
		st2 = newStore(d.KV)
	}
	var buf bytes.Buffer
	if tp.fast.render(&renderState{ctx: ctx, store: st2, services: d.Services}, &buf) != nil {
		if slowErr == nil {
			st.missed = append(st.missed, label)
		}
		return
	}
	st.fast++
	if slowErr != nil || !bytes.Equal(buf.Bytes(), slow) {
		t.Errorf("%s: fast executor completed with %q; text/template gave %q, %v", label, buf.Bytes(), slow, slowErr)
	}
}

// TestFastExecGolden renders every case of testdata/*.txtar with both executors.
func TestFastExecGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	var st diffStats
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			diffGolden(t, &st, file)
		})
	}
	t.Logf("golden: %d renders, %d eligible, %d completed by the fast executor", st.cases, st.eligible, st.fast)
	if st.fast < st.cases/3 {
		t.Errorf("the fast executor completed only %d of %d golden renders", st.fast, st.cases)
	}
}

func diffGolden(t *testing.T, st *diffStats, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, kv, services, cases := loadGolden(t, ar, dir)
	for _, c := range cases {
		cfg := cfg
		cfg.Src = caseFile(c)
		tp, err := Parse(cfg)
		if err != nil {
			continue // a parse error: no executor involved
		}
		keys, values := keysOf(kv)
		checkSame(t, st, c, tp, Data{KV: kv, Services: services})
		checkSame(t, st, c+" (sorted)", tp, Data{Keys: keys, Values: values, Services: services})
		checkSame(t, st, c+" (empty store)", tp, Data{Services: services})
		// every key missing in turn, and every value emptied in turn
		for _, k := range keys {
			less := make(map[string]string, len(kv))
			empty := make(map[string]string, len(kv))
			for k2, v := range kv {
				empty[k2] = v
				if k2 != k {
					less[k2] = v
				}
			}
			empty[k] = ""
			checkSame(t, st, c+" without "+k, tp, Data{KV: less, Services: services})
			checkSame(t, st, c+" with "+k+" empty", tp, Data{KV: empty, Services: services})
		}
	}
}

// TestFastExecRepoTemplates renders the examples' and the integration tests' templates with
// their data and with variations of it.
func TestFastExecRepoTemplates(t *testing.T) {
	var st diffStats
	services := fakeServices{"web": {
		{ID: "web-2", Name: "web", Address: "10.0.0.2", Port: 80, Tags: []string{"prod", "backup"}},
		{ID: "web-1", Name: "web", Address: "10.0.0.1", Port: 8080, Tags: []string{"prod"}, Meta: map[string]string{"weight": "5"}},
	}}
	var all []string
	for _, pat := range []string{"../examples/*/templates/*.tmpl", "../integration/testdata/*.tmpl", "../integration/*/testdata/*.tmpl", "../resource/testdata/*.tmpl", "../resource/testdata/*/*.tmpl"} {
		m, _ := filepath.Glob(pat)
		all = append(all, m...)
	}
	if len(all) < 3 {
		t.Fatalf("found only %v", all)
	}
	kv := repoData(t)
	for _, file := range all {
		abs, err := filepath.Abs(file)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := Parse(Config{Resource: "repo", Dir: filepath.Dir(abs), Src: filepath.Base(abs)})
		if err != nil {
			t.Logf("%s: %v", file, err)
			continue
		}
		if tp.fast == nil {
			t.Logf("%s: not eligible for the fast executor", file)
		}
		keys, values := keysOf(kv)
		checkSame(t, &st, file, tp, Data{KV: kv, Services: services})
		checkSame(t, &st, file+" (sorted)", tp, Data{Keys: keys, Values: values})
		checkSame(t, &st, file+" (empty)", tp, Data{KV: map[string]string{}})
		for i, k := range keys {
			if i%3 != 0 {
				continue
			}
			less := make(map[string]string, len(kv))
			for k2, v := range kv {
				if k2 != k {
					less[k2] = v
				}
			}
			checkSame(t, &st, file+" without "+k, tp, Data{KV: less, Services: services})
		}
	}
	t.Logf("repo templates: %d renders, %d eligible, %d completed by the fast executor", st.cases, st.eligible, st.fast)
	if st.fast == 0 {
		t.Error("the fast executor completed no render of the repo's templates")
	}
}

// repoData is the haproxy example's data plus the keys the integration templates read.
func repoData(t *testing.T) map[string]string {
	t.Helper()
	kv := map[string]string{}
	for _, f := range []string{"../examples/haproxy/data.yaml", "../examples/nginx/data.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range parseData(t, b) {
			kv["/"+k] = v
		}
	}
	for k, v := range map[string]string{
		"/app/name": "demo", "/app/maxconn": "100", "/app/empty": "", "/app/motto": "ünïcode ✓",
		"/app/multiline": "a\nb\n", "/app-extra/k": "x", "/services/web/servers/web-3": "10.0.0.3:80",
	} {
		kv[k] = v
	}
	return kv
}

// TestFastExecAssumptions guards what the fast executor assumes of our types: no methods on
// KVPair and backends.Service (text/template would call a method, or print an addressable
// value through a pointer method, where the fast executor reads fields and prints values).
func TestFastExecAssumptions(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[KVPair](), reflect.TypeFor[backends.Service]()} {
		if n := typ.NumMethod() + reflect.PointerTo(typ).NumMethod(); n != 0 {
			t.Errorf("%s has %d methods: teach fastexec_run.go (field, print) about them", typ, n)
		}
	}
	if fastFuncs()["getv"] == nil || fastFuncs()["printf"] == nil || fastFuncs()["call"] != nil {
		t.Error("function resolution is off")
	}
}

// TestFastExecEdges compares both executors on corners of text/template's semantics; the
// cases marked fast must be completed by the fast executor (no fallback).
func TestFastExecEdges(t *testing.T) {
	kv := map[string]string{
		"/a": "1", "/b": "", "/app/x": "ü✓", "/app/y": "2", "/app/sub/z": "3",
		"/j":   `{"a":1,"b":{"c":"d"},"n":null,"l":[1,"x",null],"s":"str","t":true}`,
		"/arr": `[1,"two",null,{"k":"v"},[1,2]]`,
	}
	cases := []struct {
		text string
		fast bool
	}{
		{`{{range $i, $e := ls "/app"}}{{$i}}:{{$e}} {{end}}`, true},
		{`{{range $k, $v := json (getv "/j")}}{{$k}}={{$v}};{{end}}`, true},
		{`{{range jsonArray (getv "/arr")}}{{.}}|{{end}}`, true},
		{`{{range jsonArray (getv "/arr")}}{{.k}}|{{end}}`, false},
		{`{{range $i, $e := jsonArray (getv "/arr")}}{{printf "%v=%v" $i $e}} {{end}}`, true},
		{`{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}`, true},
		{`{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}`, true},
		{`{{$x := ""}}{{range $x = ls "/app"}}{{$x}}{{end}}={{$x}}`, true},
		{`{{range $x := ls "/nope"}}{{$x}}{{else}}empty {{$x}}{{end}}`, true},
		{`{{with $x := getv "/b"}}y{{else}}n{{$x}}{{end}}`, true},
		{`{{if and (exists "/a") (getv "/a")}}yes{{end}} {{and 1 0 (getv "/nope")}} {{or 0 "" "x"}} {{or 0 ""}} {{and}}`, false},
		{`{{if and (exists "/a") (getv "/a")}}yes{{end}} {{and 1 0 (getv "/nope")}} {{or 0 "" "x"}} {{or 0 ""}}`, true},
		{`{{or (getv "/b") "default"}} {{"x" | or ""}} {{"" | and 1}} {{not ""}} {{not (ls "/")}}`, true},
		{`{{printf "%d items" (len (ls "/app"))}} {{len "ü"}} {{len (json (getv "/j"))}}`, true},
		{`{{(json (getv "/j")).b.c}} {{(json (getv "/j")).zz}} {{(json (getv "/j")).zz.y}} {{(json (getv "/j")).n}}`, true},
		{`{{(json (getv "/j")).n.x}}`, false},
		{`{{index (json (getv "/j")) "n"}} {{index (json (getv "/j")) "zz"}} {{index (ls "/app") 1}}`, true},
		{`{{get "/a"}} {{ls "/app"}} {{gets "/app/*"}} {{json (getv "/j")}} {{jsonArray (getv "/arr")}} {{.}} {{$}}`, true},
		{`{{nil}}`, false},
		{`{{1 | printf "%d"}} {{"a" | eq "a"}} {{eq (getv "/a") "2" "1"}} {{ne 1 2}} {{eq 1 1.0}}`, false},
		{`{{1 | printf "%d"}} {{"a" | eq "a"}} {{eq (getv "/a") "2" "1"}} {{ne 1 2}} {{eq .nope "x"}}`, true},
		{`{{printf "%s" 1}} {{printf "%v|%s|%%|%q" (get "/a") "s" "q"}} {{printf "%s"}} {{printf "x" "extra"}}`, true},
		{`{{0x1F}} {{1_000}} {{'x'}} {{1e3}} {{-0}} {{+1}} {{1.0}} {{0b101}} {{0o17}} {{1i}} {{true}} {{false}}`, true},
		{`{{with ""}}x{{else}}y{{end}}{{with "a"}}{{.}}{{end}}{{with $v := 0}}{{else with 2}}{{.}}{{end}}`, true},
		{`{{range "abc"}}{{.}}{{end}}`, false},
		{`{{range 3}}{{.}}{{end}}`, false},
		{`{{range $i, $e := json (getv "/j")}}{{$i}}{{end}}`, true},
		{`{{len 3}}`, false},
		{`{{range gets "/app/*"}}{{.Key}}={{.Value}} {{.Nope}}{{end}}`, false},
		{`{{range $p := gets "/app/*"}}{{$p.Key}} {{$p}} {{base $p.Key}}{{end}}`, true},
		{`{{range $p := gets "/app/*"}}{{$p.Key.x}}{{end}}`, false},
		{`{{$l := ls "/app"}}{{range $l}}{{reverse $l}}{{.}}{{end}}`, false},
		{`{{range reverse (ls "/app")}}{{.}}{{end}}{{ls "/app" | sortByLength}}`, true},
		{`{{print 1 2 "a" "b" 3}} {{println "x" 1}} {{print}}`, true},
		{`{{define "x"}}{{end}}{{getv "/a"}}`, true},
		{`{{block "x" .}}{{end}}`, false},
		{`{{range ls "/app"}}{{break}}{{end}}`, false},
		{`{{(get "/a").Value}} {{(get "/nope").Value}}`, false},
		{`{{getv "/nope"}}`, false},
		{`{{map "a" 1 "b" (getv "/a")}} {{(map "a" 1).a}} {{(map "a" 1).b}} {{(map "a" nil).a}}`, true},
		{`{{"x" | printf "%s-%s" "y"}} {{toUpper "ü" | printf "%q"}}`, true},
		{`{{$}}{{$ := 3}}{{$}}`, true},
		{`{{range $k, $v := services}}{{$k}}{{$v}}{{end}}{{range service "web"}}{{.ID}}{{.Port}}{{.Tags}}{{.Meta}}{{.Node}}{{index .Meta "w"}}{{end}}`, true},
		{`{{range service "web"}}{{.Nope}}{{end}}`, false},
		{`{{range services}}{{.Name}}:{{.Tags}}{{range service .Name}}{{.Address}}{{else}}none{{end}} {{end}}{{services}} {{len services}}`, true},
		{`{{range services}}{{.Nope}}{{end}}`, false},
		{`{{join (split (getv "/app/x") "") "+"}} {{replace "aaa" "a" "b" 2}} {{atoi "12" | add 1}}`, true},
		{`{{div 1 0}}`, false},
		{`{{seq 1 3}} {{range seq 3 1}}x{{else}}none{{end}}`, true},
		{`{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2.5}} {{lt (len (ls "/app")) 5}} {{html "<a&b>" 1}} {{js "'x'"}} {{urlquery "a b" "&"}}`, true},
		{`{{lt 1 2.0}}`, false},
		{`{{lt true false}}`, false},
		{`{{gt .nope 1}}`, false},
		{`{{list 1 "a" nil}} {{toJson (list)}} {{default "d" (getv "/b")}} {{empty (ls "/")}} {{first (ls "/app")}}`, true},
	}
	services := fakeServices{"web": {{ID: "web-1", Name: "web", Address: "10.0.0.1", Port: 80, Tags: []string{"a"}, Meta: map[string]string{"w": "2"}}}}
	for _, c := range cases {
		tp := parseText(t, map[string]string{"app.tmpl": c.text}, Config{})
		var st diffStats
		checkSame(t, &st, c.text, tp, Data{KV: kv, Services: services})
		if c.fast && st.fast != 1 {
			t.Errorf("%s: not completed by the fast executor (eligible: %v)", c.text, tp.fast != nil)
		}
		if !c.fast && st.fast != 0 {
			t.Errorf("%s: completed by the fast executor, want a fallback", c.text)
		}
	}
}

// TestFastExecRedefinedRoot: a partial that defines a template named like the root does not
// change what the root executes (text/template runs a clone, whose root keeps its tree).
func TestFastExecRedefinedRoot(t *testing.T) {
	tp := parseText(t, map[string]string{
		"app.tmpl": `{{if not $}}root {{include "p.tmpl"}} {{include (print "app" ".tmpl") 1}}{{else}}inner{{end}}`,
		"p.tmpl":   `p{{define "app.tmpl"}}redefined{{end}}`,
	}, Config{})
	var st diffStats
	checkSame(t, &st, "redefined root", tp, Data{})
	if st.fast != 1 {
		t.Error("not completed by the fast executor")
	}
	if out, err := tp.Render(context.Background(), Data{}); string(out) != "root p inner" {
		t.Errorf("got %q, %v", out, err)
	}
}
