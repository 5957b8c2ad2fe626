package template

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
	"gopkg.in/yaml.v3"

	"github.com/reconf/reconf/backends"
)

var update = flag.Bool("update", false, "rewrite the want/error sections of testdata/*.txtar")

// TestGolden runs every testdata/*.txtar file. A file holds:
//
//	-- config --          optional: "delims: [[ ]]", "missingkey: error"
//	-- env --             optional: KEY=VALUE lines, set for the file's cases
//	-- data --            the KV map: YAML (nested maps are joined with '/'), scalars verbatim
//	-- services --        optional: JSON {"name": [backends.Service, …]} for a fake Services
//	-- template [CASE] -- one case per template section (file CASE.tmpl, or app.tmpl)
//	-- want [CASE] --     the expected output, or
//	-- error [CASE] --    a substring of the expected Parse or Render error ($DIR: the folder)
//
// Any other section is a file written into the templates folder (partials). With -update the
// want/error sections are rewritten from what the cases produce.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			runGolden(t, file)
		})
	}
}

func runGolden(t *testing.T, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, kv, services, cases := loadGolden(t, ar, dir)
	results := map[string]txtar.File{}
	for _, c := range cases {
		c := c
		cfg := cfg
		cfg.Src = caseFile(c)
		out, err := render(cfg, Data{KV: kv, Services: services})
		// the same snapshot as sorted pairs renders the same
		keys, values := keysOf(kv)
		out2, err2 := render(cfg, Data{Keys: keys, Values: values, Services: services})
		if !bytes.Equal(out, out2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Errorf("%s: with Data.Keys got %q, %v; with Data.KV %q, %v", c, out2, err2, out, err)
		}
		var got txtar.File
		if err != nil {
			got = txtar.File{Name: join("error", c), Data: []byte(strings.ReplaceAll(err.Error(), dir, "$DIR") + "\n")}
		} else {
			got = txtar.File{Name: join("want", c), Data: out}
		}
		results[c] = got
		if *update {
			continue
		}
		want, ok := findSection(ar, "want", c)
		wantErr, okErr := findSection(ar, "error", c)
		switch {
		case ok && err != nil:
			t.Errorf("case %q: unexpected error: %v", c, err)
		case ok && !bytes.Equal(out, want):
			t.Errorf("case %q:\n got: %q\nwant: %q", c, out, want)
		case okErr && err == nil:
			t.Errorf("case %q: rendered %q, want an error containing %q", c, out, wantErr)
		case okErr && !strings.Contains(strings.ReplaceAll(err.Error(), dir, "$DIR"), strings.TrimSpace(string(wantErr))):
			t.Errorf("case %q: error\n got: %v\nwant substring: %s", c, err, wantErr)
		case !ok && !okErr:
			t.Errorf("case %q: no want or error section (run with -update)", c)
		}
	}
	if *update {
		var kept []txtar.File
		for _, f := range ar.Files {
			kind, name, _ := strings.Cut(f.Name, " ")
			switch kind {
			case "want", "error":
				continue
			case "template":
				kept = append(kept, f, results[name])
				continue
			}
			kept = append(kept, f)
		}
		ar.Files = kept
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func render(cfg Config, d Data) ([]byte, error) {
	tp, err := Parse(cfg)
	if err != nil {
		return nil, err
	}
	return tp.Render(context.Background(), d)
}

func join(kind, c string) string {
	if c == "" {
		return kind
	}
	return kind + " " + c
}

func caseFile(c string) string {
	if c == "" {
		return "app.tmpl"
	}
	return c + ".tmpl"
}

func findSection(ar *txtar.Archive, kind, c string) ([]byte, bool) {
	for _, f := range ar.Files {
		if f.Name == join(kind, c) {
			return f.Data, true
		}
	}
	return nil, false
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func parseConfig(t *testing.T, cfg *Config, data []byte) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "delims":
			l, r, _ := strings.Cut(v, " ")
			cfg.LeftDelim, cfg.RightDelim = l, r
		case "missingkey":
			cfg.MissingKeyError = v == "error"
		case "resource":
			cfg.Resource = v
		case "":
		default:
			t.Fatalf("config section: unknown key %q", k)
		}
	}
}

// parseData reads the KV map: a YAML mapping whose scalars are taken verbatim (so 1e+06 stays
// a string) and whose nested mappings are joined with '/'. A null is the empty value.
func parseData(t *testing.T, data []byte) map[string]string {
	t.Helper()
	kv := map[string]string{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("data section: %v", err)
	}
	if len(doc.Content) == 0 {
		return kv
	}
	var flatten func(prefix string, n *yaml.Node)
	flatten = func(prefix string, n *yaml.Node) {
		if n.Kind != yaml.MappingNode {
			t.Fatalf("data section: line %d: want a mapping", n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			if prefix != "" {
				key = prefix + "/" + key
			}
			switch val.Kind {
			case yaml.MappingNode:
				flatten(key, val)
			case yaml.ScalarNode:
				if val.Tag == "!!null" {
					kv[key] = ""
				} else {
					kv[key] = val.Value
				}
			default:
				t.Fatalf("data section: line %d: want a scalar or a mapping", val.Line)
			}
		}
	}
	flatten("", doc.Content[0])
	return kv
}

// fakeServices answers from a fixed catalog: Service filters by tag and copies dc into Node;
// the service named "broken" fails.
type fakeServices map[string][]backends.Service

func (f fakeServices) Service(_ context.Context, name, tag, dc string) ([]backends.Service, error) {
	if name == "broken" {
		return nil, fmt.Errorf("catalog: %w", backends.ErrUnavailable)
	}
	var out []backends.Service
	for _, s := range f[name] {
		if tag != "" && !slices.Contains(s.Tags, tag) {
			continue
		}
		if dc != "" {
			s.Node = dc
		}
		out = append(out, s)
	}
	return out, nil
}

func (f fakeServices) ServiceNames(context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	for name, ss := range f {
		out[name] = []string{}
		for _, s := range ss {
			out[name] = append(out[name], s.Tags...)
		}
	}
	return out, nil
}

// loadGolden sets up a golden archive in dir: template, partial and other files written, env
// set, and the config, store, services and case names (in file order) returned.
func loadGolden(t *testing.T, ar *txtar.Archive, dir string) (cfg Config, kv map[string]string, services Services, cases []string) {
	t.Helper()
	cfg = Config{Resource: "golden", Dir: dir}
	kv = map[string]string{}
	for _, f := range ar.Files {
		kind, name, _ := strings.Cut(f.Name, " ")
		switch kind {
		case "config":
			parseConfig(t, &cfg, f.Data)
		case "env":
			for _, line := range strings.Split(strings.TrimSpace(string(f.Data)), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					t.Setenv(k, v)
				}
			}
		case "data":
			kv = parseData(t, f.Data)
		case "services":
			fs := fakeServices{}
			if err := json.Unmarshal(f.Data, &fs); err != nil {
				t.Fatalf("services section: %v", err)
			}
			services = fs
		case "template":
			cases = append(cases, name)
			writeFile(t, dir, caseFile(name), f.Data)
		case "want", "error":
		default:
			writeFile(t, dir, f.Name, f.Data)
		}
	}
	return cfg, kv, services, cases
}
