package watch

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata/equivalence.want from the file backend's output")

// equivData is what every backend holds under /eq. Siblings that share a string prefix with a
// resource key (/app-extra) and keys outside the resource's keys (/other) must not show.
var equivData = map[string]string{
	"/eq/app/name":                         "reconf demo",
	"/eq/app/maxconn":                      "4096",
	"/eq/app/empty":                        "",
	"/eq/app/motto":                        `ünïcode & <b>"quoted"</b> 'single' {{not a template}}`,
	"/eq/app/multiline":                    "first line\nsecond line\n\tindented",
	"/eq/app-extra/k":                      "must not match /app",
	"/eq/other/ignored":                    "not in keys",
	"/eq/services/web/host":                "www.example.com",
	"/eq/services/web/servers/web-1":       "10.0.1.11:8080",
	"/eq/services/web/servers/web-2":       "10.0.1.12:8080",
	"/eq/services/web/servers/web-10":      "10.0.1.20:8080",
	"/eq/services/api/host":                "api.example.com",
	"/eq/services/api/servers/api-1":       "10.0.2.21:9000",
	"/eq/services/db/servers/db-1":         "10.0.3.1:5432",
	"/eq/services/db-replica/host":         "replica.example.com",
	"/eq/services/db-replica/servers/db-r": "10.0.3.2:5432",
}

// equivConfdir writes a confdir whose one resource renders testdata/equivalence.tmpl to dest.
func equivConfdir(t *testing.T, dir, dest string) string {
	t.Helper()
	tmpl, err := os.ReadFile("testdata/equivalence.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	confdir := filepath.Join(dir, "confdir")
	addResource(t, confdir, "equiv", `dest = "`+dest+`"
prefix = "/eq"
keys = ["/app", "/services"]
mode = "0644"`, string(tmpl))
	return confdir
}

// yamlOf nests flat keys into maps, as the file backend reads them.
func yamlOf(t *testing.T, flat map[string]string) []byte {
	t.Helper()
	root := map[string]any{}
	for k, v := range flat {
		parts := strings.Split(strings.TrimPrefix(k, "/"), "/")
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	b, err := yaml.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// renderOnce runs `reconf -onetime` with args and returns the rendered file.
func renderOnce(t *testing.T, dir string, args ...string) string {
	t.Helper()
	dest := filepath.Join(dir, "out.conf")
	confdir := equivConfdir(t, dir, dest)
	p := startReconf(t, dir, append([]string{"-onetime", "-confdir", confdir, "-log-level", "debug"}, args...)...)
	<-p.done
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("reconf -onetime %v: exit %d\n%s", args, code, p.tail(40))
	}
	b, err := os.ReadFile(dest)
	if err != nil {
		t.Fatalf("reconf -onetime %v exited 0 but: %v", args, err)
	}
	return string(b)
}

// TestEquivalence renders one confdir from the file backend and from each real store loaded
// with the same data: the outputs must be byte-identical, and equal to the golden file. The
// haproxy example is rendered the same way (subtest "haproxy").
func TestEquivalence(t *testing.T) {
	want, err := os.ReadFile("testdata/equivalence.want")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)

	var fileOut string
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		data := filepath.Join(dir, "data.yaml")
		writeFile(t, data, string(yamlOf(t, equivData)))
		fileOut = renderOnce(t, dir, "-backend", "file", "-file", data)
		if *update {
			if err := os.WriteFile("testdata/equivalence.want", []byte(fileOut), 0o644); err != nil {
				t.Fatal(err)
			}
			want = []byte(fileOut)
		}
		if fileOut != string(want) {
			t.Errorf("file backend output differs from testdata/equivalence.want:\n--- got ---\n%s\n--- want ---\n%s", fileOut, want)
		}
	})
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) {
			s := e.get(t, name)
			s.Load(t, equivData, 8)
			got := renderOnce(t, t.TempDir(), s.args()...)
			if got != string(want) {
				t.Errorf("%s output differs from the file backend's (testdata/equivalence.want):\n%s", name, lineDiff(string(want), got))
			}
		})
	}
	t.Run("haproxy", func(t *testing.T) { haproxyExample(t, e) })
}

// haproxyExample renders examples/haproxy (its template, its data.yaml) from the file backend
// and from each real store of e loaded with the same data (under /ex, with prefix = "/ex" in
// the resource): every output must equal examples/haproxy/haproxy.cfg.expected.
func haproxyExample(t *testing.T, e *env) {
	const example = "../../examples/haproxy"
	want, err := os.ReadFile(filepath.Join(example, "haproxy.cfg.expected"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join(example, "templates", "haproxy.cfg.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(example, "data.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		t.Fatalf("data.yaml: %v", err)
	}
	data := map[string]string{}
	flatten("/ex", tree, data)
	render := func(t *testing.T, args ...string) string {
		dir := t.TempDir()
		dest := filepath.Join(dir, "haproxy.cfg")
		confdir := filepath.Join(dir, "confdir")
		// The example's keys, under /ex; no check_cmd nor reload_cmd (haproxy is not the point).
		addResource(t, confdir, "haproxy", fmt.Sprintf("dest = %q\nprefix = \"/ex\"\nkeys = [\"/haproxy\", \"/services\"]", dest), string(tmpl))
		p := startReconf(t, dir, append([]string{"-onetime", "-confdir", confdir}, args...)...)
		<-p.done
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("reconf -onetime %v: exit %d\n%s", args, code, p.tail(40))
		}
		return readFile(dest)
	}
	t.Run("file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "data.yaml")
		writeFile(t, f, string(yamlOf(t, data)))
		if got := render(t, "-backend", "file", "-file", f); got != string(want) {
			t.Errorf("file backend:\n%s", lineDiff(string(want), got))
		}
	})
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) {
			s := e.get(t, name)
			s.Load(t, data, 8)
			if got := render(t, s.args()...); got != string(want) {
				t.Errorf("%s differs from haproxy.cfg.expected:\n%s", name, lineDiff(string(want), got))
			}
		})
	}
}

// flatten turns nested YAML maps into '/'-separated keys under prefix.
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			flatten(prefix+"/"+k, c, out)
		}
	default:
		out[prefix] = fmt.Sprint(x)
	}
}

// lineDiff shows the lines that differ between want and got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(i+1) + ":\n  want " + quote(wl) + "\n  got  " + quote(gl) + "\n")
		}
	}
	return b.String()
}
