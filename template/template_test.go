package template

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/reconf/reconf/backends"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// parseText writes files (name → content) into a temporary templates folder and parses
// "app.tmpl" from it.
func parseText(t testing.TB, files map[string]string, cfg Config) *Template {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Dir = dir
	if cfg.Src == "" {
		cfg.Src = "app.tmpl"
	}
	tp, err := Parse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestMissingKeyError(t *testing.T) {
	tp := parseText(t, map[string]string{"app.tmpl": "a\nb {{getv \"/x\"}}\n{{getv \"/db/user\"}}\n"},
		Config{Resource: "web.toml"})
	_, err := tp.Render(context.Background(), Data{KV: map[string]string{"/x": "1"}})
	if err == nil {
		t.Fatal("render succeeded, want a missing key error")
	}
	if !errors.Is(err, ErrKeyNotExist) {
		t.Errorf("errors.Is(%v, ErrKeyNotExist) = false", err)
	}
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "/db/user" {
		t.Errorf("errors.As KeyError: %v (key %v)", err, ke)
	}
	// The file and line once, the key once; the resource is the caller's to name.
	if got, want := err.Error(), "app.tmpl:3:2: getv: key does not exist: /db/user"; got != want {
		t.Errorf("error %q\nwant  %q", got, want)
	}
}

// TestErrorShapes: each place (template file and line, partial, key) is named once.
func TestErrorShapes(t *testing.T) {
	files := map[string]string{
		"app.tmpl":    "{{define \"block\"}}\n{{getv \"/in/define\"}}{{end}}x\n{{template \"block\"}}",
		"part.tmpl":   "ok\n{{div 1 0}}",
		"inc.tmpl":    "a\n  {{include \"part.tmpl\"}}",
		"nested.tmpl": "{{include \"inc.tmpl\"}}",
		"dot.tmpl":    "{{index \"abc\" 5}}",
		"badinc.tmpl": "{{include \"bad.tmpl\"}}",
		"bad.tmpl":    "\n{{if}}",
	}
	for src, want := range map[string]string{
		"app.tmpl":    "app.tmpl:2:2: getv: key does not exist: /in/define",
		"inc.tmpl":    "inc.tmpl:2:4: include: part.tmpl:2:2: at <div 1 0>: error calling div: integer division by zero",
		"nested.tmpl": "nested.tmpl:1:2: include: inc.tmpl:2:4: include: part.tmpl:2:2: at <div 1 0>: error calling div: integer division by zero",
		"dot.tmpl":    "dot.tmpl:1:2: at <index \"abc\" 5>: error calling index: index out of range: 5",
	} {
		tp := parseText(t, files, Config{Src: src})
		_, err := tp.Render(context.Background(), Data{})
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v\nwant  %s", src, err, want)
		}
	}
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Parse(Config{Dir: dir, Src: "badinc.tmpl"})
	if want := "parse badinc.tmpl:1:2: include: bad.tmpl:2: missing value for if"; err == nil || err.Error() != want {
		t.Errorf("badinc.tmpl: error %v\nwant  %s", err, want)
	}
}

func TestSentinels(t *testing.T) {
	tp := parseText(t, map[string]string{"app.tmpl": `{{service "web"}}`}, Config{Resource: "r"})
	if _, err := tp.Render(context.Background(), Data{}); !errors.Is(err, backends.ErrNoDiscovery) {
		t.Errorf("service without Services: %v, want ErrNoDiscovery", err)
	}
	tp = parseText(t, map[string]string{"app.tmpl": `{{div 1 0}}`}, Config{Resource: "r"})
	if _, err := tp.Render(context.Background(), Data{}); !errors.Is(err, ErrDivByZero) {
		t.Errorf("div by zero: %v, want ErrDivByZero", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.tmpl"), []byte(`{{include "a.tmpl"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(Config{Resource: "r", Dir: dir, Src: "a.tmpl"}); !errors.Is(err, ErrIncludeCycle) {
		t.Errorf("self include: %v, want ErrIncludeCycle", err)
	}
	missing := filepath.Join(dir, "missing.tmpl")
	if _, err := Parse(Config{Resource: "r", Dir: dir, Src: "missing.tmpl"}); !errors.Is(err, os.ErrNotExist) ||
		err.Error() != "read template: open "+missing+": no such file or directory" {
		t.Errorf("missing src: %v, want os.ErrNotExist naming the file once", err)
	}
}

func TestFiles(t *testing.T) {
	tp := parseText(t, map[string]string{
		"app.tmpl":   `{{include "p/a.tmpl"}}{{include "b.tmpl"}}{{include "p/a.tmpl"}}`,
		"p/a.tmpl":   `{{include "b.tmpl"}}`,
		"b.tmpl":     `b`,
		"other.tmpl": `not included`,
	}, Config{})
	var got []string
	for _, f := range tp.Files() {
		got = append(got, filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f))
	}
	if want := []string{"001/app.tmpl", "p/a.tmpl", "001/b.tmpl"}; !slices.Equal(got, want) {
		t.Errorf("Files() = %q, want %q", got, want)
	}
}

func TestAbsoluteSrc(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "abs.tmpl")
	if err := os.WriteFile(src, []byte(`{{getv "/k"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tp, err := Parse(Config{Resource: "r", Dir: "/nonexistent", Src: src})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tp.Render(context.Background(), Data{KV: map[string]string{"/k": "v"}})
	if err != nil || string(out) != "v" {
		t.Fatalf("got %q, %v", out, err)
	}
}

// TestStoreReplacedEachRender checks that a render sees only its own snapshot: a key deleted
// since the last render is gone, memoized answers do not leak between renders.
func TestStoreReplacedEachRender(t *testing.T) {
	tp := parseText(t, map[string]string{"app.tmpl": `{{ls "/"}} {{getv "/b" "gone"}} {{gets "/*"}}`}, Config{})
	for i, c := range []struct {
		kv   map[string]string
		want string
	}{
		{map[string]string{"/a": "1", "/b": "2"}, "[a b] 2 [{/a 1} {/b 2}]"},
		{map[string]string{"/a": "1"}, "[a] gone [{/a 1}]"},
		{nil, "[] gone []"},
	} {
		out, err := tp.Render(context.Background(), Data{KV: c.kv})
		if err != nil || string(out) != c.want {
			t.Errorf("render %d: got %q, %v; want %q", i, out, err, c.want)
		}
	}
}

// countingServices counts the calls that reach the catalog.
type countingServices struct {
	fakeServices
	calls atomic.Int32
}

func (c *countingServices) Service(ctx context.Context, name, tag, dc string) ([]backends.Service, error) {
	c.calls.Add(1)
	return c.fakeServices.Service(ctx, name, tag, dc)
}

func TestServiceMemoizedPerRender(t *testing.T) {
	svc := &countingServices{fakeServices: fakeServices{"web": {{ID: "b"}, {ID: "a"}}}}
	tp := parseText(t, map[string]string{"app.tmpl": `{{range service "web"}}{{.ID}}{{end}}{{len (service "web")}}`}, Config{})
	for i := 1; i <= 2; i++ {
		out, err := tp.Render(context.Background(), Data{Services: svc})
		if err != nil || string(out) != "ab2" {
			t.Fatalf("got %q, %v", out, err)
		}
		if got := svc.calls.Load(); got != int32(i) {
			t.Errorf("after render %d: %d catalog calls, want %d", i, got, i)
		}
	}
}

func TestParseServiceName(t *testing.T) {
	for in, want := range map[string][3]string{
		"web":              {"web", "", ""},
		"prod.web":         {"web", "prod", ""},
		"web@dc1":          {"web", "", "dc1"},
		"v1.prod.web@dc-1": {"web", "v1.prod", "dc-1"},
	} {
		n, tag, dc := parseServiceName(in)
		if [3]string{n, tag, dc} != want {
			t.Errorf("parseServiceName(%q) = %q %q %q, want %q", in, n, tag, dc, want)
		}
	}
}

// TestConcurrentRender renders one template from many goroutines, each with its own data,
// and checks that no render sees another's store (run with -race).
func TestConcurrentRender(t *testing.T) {
	tp := parseText(t, map[string]string{
		"app.tmpl": `{{getv "/id"}}:{{range gets "/n/*"}}{{.Value}},{{end}}{{ls "/n"}}{{include "p.tmpl"}}`,
		"p.tmpl":   `|{{getv "/id"}}`,
	}, Config{})
	const workers, rounds = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				id := fmt.Sprintf("w%dr%d", w, r)
				kv := map[string]string{"/id": id, "/n/x": id + "x", "/n/y": id + "y"}
				want := fmt.Sprintf("%s:%sx,%sy,[x y]|%s", id, id, id, id)
				out, err := tp.Render(context.Background(), Data{KV: kv})
				if err != nil || string(out) != want {
					errs <- fmt.Errorf("got %q, %v; want %q", out, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRenderCanceledContextLookups(t *testing.T) {
	// lookups fail quietly (confd returns an empty list, never an error).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tp := parseText(t, map[string]string{"app.tmpl": `{{lookupIP "reconf.invalid"}} {{len (lookupSRV "x" "tcp" "reconf.invalid")}}`}, Config{})
	out, err := tp.Render(ctx, Data{})
	if err != nil || string(out) != "[] 0" {
		t.Fatalf("got %q, %v", out, err)
	}
}

// TestFastSetParsedAgainForErrors: a set the fast executor runs lets its text/template go, and
// a render that fails is reported by a text/template parsed again from the texts Parse read
// (root and partials), not from the files as they are on disk by then.
func TestFastSetParsedAgainForErrors(t *testing.T) {
	tp := parseText(t, map[string]string{
		"app.tmpl":  "a={{getv \"/a\"}}\n{{include \"part.tmpl\"}}",
		"part.tmpl": "b={{getv \"/b\"}}",
	}, Config{})
	if tp.fast == nil || tp.base != nil {
		t.Fatalf("fast %v, base kept %v: want a fast set without its text/template", tp.fast != nil, tp.base != nil)
	}
	for _, f := range tp.Files() {
		if err := os.WriteFile(f, []byte("changed {{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := tp.Render(context.Background(), Data{KV: map[string]string{"/a": "1", "/b": "2"}})
	if err != nil || string(out) != "a=1\nb=2" {
		t.Fatalf("render = %q, %v", out, err)
	}
	_, err = tp.Render(context.Background(), Data{KV: map[string]string{"/a": "1"}})
	if err == nil || !strings.Contains(err.Error(), "part.tmpl:1") || !strings.Contains(err.Error(), "/b") {
		t.Fatalf("render without /b: %v, want the error at part.tmpl:1 naming /b", err)
	}
}
