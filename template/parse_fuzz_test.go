package template

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse parses arbitrary template text, with a partial it may include: no panic, no hang,
// and an error names the file it is about (the template or the partial), with its line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "plain", "{{getv \"/a\"}}", "{{range gets \"/*\"}}{{.Key}}{{end}}", "{{if}}", "{{",
		"{{include \"part.tmpl\"}}", "{{include \"nope.tmpl\"}}", "{{include \"app.tmpl\"}}",
		"{{define \"x\"}}{{template \"x\"}}{{end}}", "{{nosuch}}", "a\n{{ end }}", "{{/* c */}}",
		"{{$x := 1}}{{$x = 2}}{{$x}}", "{{template \"part.tmpl\"}}", "{{block \"b\" .}}{{end}}",
	} {
		f.Add(s, "part {{getv \"/p\"}}", "")
	}
	f.Add("[[getv \"/a\"]]", "x", "[[ ]]")
	f.Fuzz(func(t *testing.T, text, part, delims string) {
		dir := t.TempDir()
		for name, s := range map[string]string{"app.tmpl": text, "part.tmpl": part} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg := Config{Resource: "fuzz", Dir: dir, Src: "app.tmpl"}
		if l, r, ok := strings.Cut(delims, " "); ok && l != "" && r != "" {
			cfg.LeftDelim, cfg.RightDelim = l, r
		}
		type result struct {
			tp  *Template
			err error
		}
		done := make(chan result, 1)
		go func() {
			tp, err := Parse(cfg)
			done <- result{tp, err}
		}()
		var res result
		select {
		case res = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Parse(%q, part %q) did not return within 10s", text, part)
		}
		if res.err == nil {
			if res.tp == nil {
				t.Fatalf("Parse(%q): no template and no error", text)
			}
			return
		}
		msg := res.err.Error()
		if !strings.HasPrefix(msg, "parse app.tmpl:") && !strings.HasPrefix(msg, "parse part.tmpl:") {
			t.Errorf("Parse(%q, part %q): error %q does not start with the file and line", text, part, msg)
		}
	})
}
