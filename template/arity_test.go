package template

import (
	"context"
	"fmt"
	"testing"
)

// TestOneArgOnly: getv is bound without its variadic tail only when no use of it could pass
// anything but one argument, and a template renders the same (output or error) either way.
func TestOneArgOnly(t *testing.T) {
	kv := map[string]string{"/a": "1", "/b/x": "2", "/b/y": "3"}
	for _, tc := range []struct {
		files map[string]string
		want  bool
	}{
		{map[string]string{"t": `{{getv "/a"}}`}, true},
		{map[string]string{"t": `{{"/a" | getv}}`}, true},
		{map[string]string{"t": `{{(getv "/a")}} {{with $x := getv "/a"}}{{$x}}{{end}}`}, true},
		{map[string]string{"t": `{{range ls "/b"}}{{getv (printf "/b/%s" .)}}{{end}}`}, true},
		{map[string]string{"t": `{{if exists "/a"}}{{getv "/a"}}{{else}}-{{end}}`}, true},
		{map[string]string{"t": `{{getv "/missing"}}`}, true},
		{map[string]string{"t": `no functions`}, true},
		{map[string]string{"t": `{{getv "/a" "d"}}`}, false},
		{map[string]string{"t": `{{"d" | getv "/missing"}}`}, false},
		{map[string]string{"t": `{{getv}}`}, false},
		{map[string]string{"t": `{{printf "%v" getv}}`}, false},
		{map[string]string{"t": `{{"/a" | getv | getv}}`}, true},
		{map[string]string{"t": `{{if getv "/a"}}{{else}}{{getv "/missing" "x"}}{{end}}`}, false},
		{map[string]string{"t": `{{range ls "/b"}}{{getv . "x"}}{{end}}`}, false},
		{map[string]string{"t": `{{define "x"}}{{getv "/z" "d"}}{{end}}{{getv "/a"}}{{template "x"}}`}, false},
		{map[string]string{"t": `{{include "p"}}{{getv "/a"}}`, "p": `{{getv "/z" "d"}}`}, false},
		{map[string]string{"t": `{{include "p"}}`, "p": `{{getv "/a"}}`}, true},
	} {
		tp := parseText(t, tc.files, Config{Src: "t"})
		if tp.getvOneArg != tc.want {
			t.Errorf("%q: getv bound with one argument = %v, want %v", tc.files, tp.getvOneArg, tc.want)
		}
		out, err := tp.Render(context.Background(), Data{KV: kv})
		variadic := parseText(t, tc.files, Config{Src: "t"})
		variadic.getvOneArg = false
		out2, err2 := variadic.Render(context.Background(), Data{KV: kv})
		if string(out) != string(out2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Errorf("%q: renders %q, %v; with variadic getv %q, %v", tc.files, out, err, out2, err2)
		}
	}
}

// TestUsesServices: a template (or a file it includes) that calls service or services says so;
// one that only mentions the word, as keys or text, does not.
func TestUsesServices(t *testing.T) {
	for _, tc := range []struct {
		files map[string]string
		want  bool
	}{
		{map[string]string{"t": `{{range service "web"}}{{.Address}}{{end}}`}, true},
		{map[string]string{"t": `{{range $n, $tags := services}}{{$n}}{{end}}`}, true},
		{map[string]string{"t": `{{include "p"}}`, "p": `{{len (service "web")}}`}, true},
		{map[string]string{"t": `services: {{getv "/services/web/host"}}`}, false},
		{map[string]string{"t": `{{range gets "/services/*"}}{{.Value}}{{end}}`}, false},
	} {
		if got := parseText(t, tc.files, Config{Src: "t"}).UsesServices(); got != tc.want {
			t.Errorf("%q: UsesServices = %v, want %v", tc.files, got, tc.want)
		}
	}
}
