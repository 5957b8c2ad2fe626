package resource

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchResource is a 1,000-line template over 1,000 keys.
func benchResource(b *testing.B) (*Resource, map[string]string) {
	f := newFixture(b)
	kv := map[string]string{}
	for i := range 1000 {
		kv[fmt.Sprintf("/prod/db/k%04d", i)] = strings.Repeat("v", 40)
	}
	r := f.one(tomlFor(f.dest("bench.conf"), ""), `{{range gets "/db/*"}}{{.Key}} = {{.Value}}
{{end}}`)
	return r, kv
}

func BenchmarkApplyUnchanged(b *testing.B) {
	r, kv := benchResource(b)
	o := SyncOptions{Log: slog.New(slog.DiscardHandler)}
	if _, err := r.Apply(context.Background(), kv, o); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if res, err := r.Apply(context.Background(), kv, o); err != nil || res.Written {
			b.Fatal(res, err)
		}
	}
}

func BenchmarkApplyChanged(b *testing.B) {
	r, kv := benchResource(b)
	o := SyncOptions{Log: slog.New(slog.DiscardHandler)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		kv["/prod/db/k0000"] = fmt.Sprint(i)
		if res, err := r.Apply(context.Background(), kv, o); err != nil || !res.Written {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkApplyChangedOneKey is the watch-mode hot path: one key changed, one small file
// rewritten (stage, fsync, rename, fsync folder).
func BenchmarkApplyChangedOneKey(b *testing.B) {
	f := newFixture(b)
	r := f.one(tomlFor(f.dest("one.conf"), ""), `v={{getv "/db/k"}}`)
	kv := map[string]string{"/prod/db/k": "0"}
	o := SyncOptions{Log: slog.New(slog.DiscardHandler)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		kv["/prod/db/k"] = fmt.Sprint(i)
		if res, err := r.Apply(context.Background(), kv, o); err != nil || !res.Written {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkCommand runs a check_cmd the way it starts now (directly: plain words) and
// through /bin/sh -c, as every command did before.
func BenchmarkCommand(b *testing.B) {
	f := filepath.Join(b.TempDir(), "stage")
	if err := os.WriteFile(f, []byte("v=1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := "grep -q v= " + f
	if _, ok := directArgs(cmd); !ok {
		b.Fatalf("%q does not start directly", cmd)
	}
	for _, bc := range []struct {
		name string
		run  func(context.Context, string, time.Duration) ([]byte, error)
	}{{"direct", runCommand}, {"shell", runShell}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if out, err := bc.run(context.Background(), cmd, time.Minute); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}
