package template

import (
	"context"
	"testing"
)

// BenchmarkFastExec compares text/template ("text") with the fast executor ("fast") on the
// -onetime scenarios' templates and on a small one, in the same process.
func BenchmarkFastExec(b *testing.B) {
	keys, values := sorted100k()
	cases := []struct {
		name, text string
		d          Data
	}{
		{"LsGetv100k", `{{range $s := ls "/app"}}[{{$s}}]
{{range $k := ls (printf "/app/%s" $s)}}{{$k}}={{getv (printf "/app/%s/%s" $s $k)}}
{{end}}{{end}}`, Data{Keys: keys, Values: values}},
		{"Gets100k", "{{range gets \"/app/*/*\"}}{{.Key}}={{.Value}}\n{{end}}", Data{Keys: keys, Values: values}},
		{"Small", `{{getv "/a"}} {{range gets "/b/*"}}{{.Value}}{{end}}`, Data{KV: map[string]string{"/a": "1", "/b/c": "2"}}},
	}
	ctx := context.Background()
	for _, c := range cases {
		tp := parseText(b, map[string]string{"app.tmpl": c.text}, Config{})
		if tp.fast == nil {
			b.Fatalf("%s: not eligible for the fast executor", c.name)
		}
		for _, mode := range []struct {
			name string
			fast *fastProg
		}{{"text", nil}, {"fast", tp.fast}} {
			b.Run(c.name+"/"+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := tp.render(ctx, c.d, mode.fast); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
