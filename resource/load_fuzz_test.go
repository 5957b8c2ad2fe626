package resource

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoad loads an arbitrary conf.d file: no panic, no hang, and every error names the file.
func FuzzLoad(f *testing.F) {
	good := "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/reconf-fuzz/a\"\n"
	for _, s := range []string{
		"", good, good + "mode = \"0644\"\n", good + "mode = \"644\"\n", good + "mode = 0644\n",
		good + "mode = \"0x1a4\"\n", good + "mode = \"99999999999\"\n", good + "keys = [\"/a\", \"/b/*\"]\nprefix = \"app\"\n",
		good + "uid = 0\ngid = -5\n", good + "owner = \"root\"\ngroup = \"nosuchgroup\"\n",
		good + "wait = \"1s:2s\"\ncheck_timeout = 3\nreload_timeout = \"x\"\n",
		good + "check_cmd = \"{{.src\"\n", good + "reload_cmd = \"{{.nosuch}}\"\n",
		good + "missingkey = \"error\"\nleft_delimiter = \"[[\"\nright_delimiter = \"]]\"\n",
		"[template]\nsrc = \"nope.tmpl\"\ndest = \"x\"\n", "[template]\nsrc = \"../../../etc/passwd\"\ndest = \"x\"\n",
		"[template\n", "template = 1\n", "[[template]]\nsrc = \"a\"\n", "[template]\nsrc = 1\n",
		"[template]\nunknown = 1\n[other]\n", "a = \"\\u0000\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		for _, d := range []string{"conf.d", "templates"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		file := filepath.Join(dir, "conf.d", "fuzz.toml")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "templates", "a.tmpl"), []byte("{{getv \"/a\"}}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		type result struct {
			rs  []*Resource
			err error
		}
		done := make(chan result, 1)
		go func() {
			rs, err := Load(Defaults{ConfDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			done <- result{rs, err}
		}()
		var res result
		select {
		case res = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Load(%q) did not return within 10s", text)
		}
		switch {
		case res.err != nil:
			if len(res.rs) != 0 {
				t.Errorf("Load(%q): %d resources and an error", text, len(res.rs))
			}
			if !strings.HasPrefix(res.err.Error(), file+": ") {
				t.Errorf("Load(%q): error %q does not start with the file", text, res.err)
			}
		case len(res.rs) != 1:
			t.Errorf("Load(%q): %d resources and no error", text, len(res.rs))
		default:
			r := res.rs[0]
			if r.Tmpl == nil || r.Dest == "" || r.Src == "" || r.File != file {
				t.Errorf("Load(%q): incomplete resource %+v", text, r)
			}
		}
	})
}
