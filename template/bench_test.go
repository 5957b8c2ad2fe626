package template

import (
	"context"
	"fmt"
	"testing"
)

// kv100k is 100,000 keys: 20,000 upstream nodes with five fields each, spread over 100 services.
func kv100k() map[string]string {
	kv := make(map[string]string, 100_000)
	for i := 0; i < 20_000; i++ {
		base := fmt.Sprintf("/services/svc%d/node%d", i%100, i)
		kv[base+"/addr"] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		kv[base+"/port"] = fmt.Sprint(8000 + i%1000)
		kv[base+"/weight"] = fmt.Sprint(i % 10)
		kv[base+"/zone"] = fmt.Sprintf("z%d", i%3)
		kv[base+"/up"] = "true"
	}
	return kv
}

// bigTemplate walks the whole tree the way haproxy/nginx templates do: lsdir per service,
// getv per node, gets and getvs per service, a few point lookups.
const bigTemplate = `{{range $svc := lsdir "/services"}}backend {{$svc}}
{{range $n := lsdir (printf "/services/%s" $svc)}}  server {{$n}} {{getv (printf "/services/%s/%s/addr" $svc $n)}}:{{getv (printf "/services/%s/%s/port" $svc $n)}} weight {{getv (printf "/services/%s/%s/weight" $svc $n) "1"}}
{{end}}  # {{len (gets (printf "/services/%s/*/zone" $svc))}} zones {{len (getvs (printf "/services/%s/*/up" $svc))}} up
{{end}}{{getv "/services/svc1/node1/addr"}} {{exists "/nope"}} {{len (ls "/services")}}
`

func BenchmarkRender100kKeys(b *testing.B) {
	kv := kv100k()
	tp := parseText(b, map[string]string{"app.tmpl": bigTemplate}, Config{Resource: "bench"})
	ctx := context.Background()
	out, err := tp.Render(ctx, Data{KV: kv})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(out)), "out-bytes")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := tp.Render(ctx, Data{KV: kv}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender100kKeysPointLookups only uses getv: no index is built, so the cost should
// not grow with the size of the store.
func BenchmarkRender100kKeysPointLookups(b *testing.B) {
	kv := kv100k()
	tp := parseText(b, map[string]string{"app.tmpl": `{{getv "/services/svc1/node1/addr"}} {{getv "/nope" "d"}}`}, Config{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Render(ctx, Data{KV: kv}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderSmall measures the fixed per-render cost (pooled clone, store, buffer).
func BenchmarkRenderSmall(b *testing.B) {
	kv := map[string]string{"/a": "1", "/b/c": "2"}
	tp := parseText(b, map[string]string{"app.tmpl": `{{getv "/a"}} {{range gets "/b/*"}}{{.Value}}{{end}}`}, Config{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Render(ctx, Data{KV: kv}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClone is what a render would cost on top if it cloned the parsed template and bound
// its functions every time instead of taking a pooled instance.
func BenchmarkClone(b *testing.B) {
	tp := parseText(b, map[string]string{"app.tmpl": bigTemplate}, Config{})
	base, err := tp.textTemplate()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := base.Clone()
		if err != nil {
			b.Fatal(err)
		}
		c.Funcs(boundFuncs(&instance{}))
	}
}

// BenchmarkRenderLsGetv100k is the -onetime latency scenario's ls+getv template over 100,000
// keys (1,000 folders of 100), from sorted pairs as a sorted-reading backend gives them.
func BenchmarkRenderLsGetv100k(b *testing.B) {
	keys, values := sorted100k()
	tp := parseText(b, map[string]string{"app.tmpl": `{{range $s := ls "/app"}}[{{$s}}]
{{range $k := ls (printf "/app/%s" $s)}}{{$k}}={{getv (printf "/app/%s/%s" $s $k)}}
{{end}}{{end}}`}, Config{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Render(ctx, Data{Keys: keys, Values: values}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderGets100k is the -onetime latency scenario's gets template over 100,000 keys.
func BenchmarkRenderGets100k(b *testing.B) {
	keys, values := sorted100k()
	tp := parseText(b, map[string]string{"app.tmpl": "{{range gets \"/app/*/*\"}}{{.Key}}={{.Value}}\n{{end}}"}, Config{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Render(ctx, Data{Keys: keys, Values: values}); err != nil {
			b.Fatal(err)
		}
	}
}

// sorted100k is the latency scenario's 100,000 keys, sorted, and their values.
func sorted100k() (keys, values []string) {
	for i := range 100_000 {
		keys = append(keys, fmt.Sprintf("/app/s%04d/k%03d", i/100, i%100))
		values = append(values, fmt.Sprintf("value-%d", i))
	}
	return keys, values
}
