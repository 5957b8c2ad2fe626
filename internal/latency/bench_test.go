package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/runner"
	"github.com/reconf/reconf/resource"
)

// BenchmarkOnetime runs the -onetime scenarios of the harness in process (runner.Run with
// Onetime), against the real etcd, so that `go test -bench Onetime -cpuprofile` shows where
// the time goes. The harness itself times the real binary.
func BenchmarkOnetime(b *testing.B) {
	tb := newTB("etcd")
	defer tb.Close()
	be, w := startEtcd(tb)
	defer w.close()
	ctx := context.Background()
	if err := w.load(ctx, dataset("/app", 100_000, 100)); err != nil {
		b.Fatal(err)
	}
	var multi []kvPair
	for r := range 50 {
		multi = append(multi, dataset(fmt.Sprintf("/multi/r%02d", r), 1000, 100)...)
	}
	if err := w.load(ctx, multi); err != nil {
		b.Fatal(err)
	}
	for _, sc := range []struct {
		name string
		conf func(c *confDir)
	}{
		{"gets100k", func(c *confDir) {
			c.write("templates/gets.tmpl", tmplGets)
			c.resource("gets", "gets.tmpl", "/", "/app")
		}},
		{"ls100k", func(c *confDir) {
			c.write("templates/ls.tmpl", tmplLs)
			c.resource("ls", "ls.tmpl", "/", "/app")
		}},
		{"multi50x1k", func(c *confDir) {
			c.write("templates/multi.tmpl", tmplMulti)
			for r := range 50 {
				c.resource(fmt.Sprintf("r%02d", r), "multi.tmpl", fmt.Sprintf("/multi/r%02d", r), "/")
			}
		}},
	} {
		b.Run(sc.name, func(b *testing.B) {
			c := newConfDir(tb)
			sc.conf(c)
			benchOnetime(b, c, be)
		})
	}
}

func benchOnetime(b *testing.B, c *confDir, be backends.Backend) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := resource.Defaults{ConfDir: c.dir, Log: log, CheckTimeout: 10 * time.Second, ReloadTimeout: 10 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := os.RemoveAll(c.out); err != nil {
			b.Fatal(err)
		}
		if err := os.Mkdir(c.out, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		list, err := resource.Load(d)
		if err != nil {
			b.Fatal(err)
		}
		if err := runner.Run(context.Background(), runner.Config{Resources: list, Backend: be, Defaults: d, Onetime: true, Log: log}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(c.out)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGet100k reads 100,000 keys through each backend's Get (no render), so that
// -cpuprofile and -memprofile show the backend's own cost.
func BenchmarkGet100k(b *testing.B) {
	for _, t := range targets {
		if t.name == "file" {
			continue
		}
		b.Run(t.name, func(b *testing.B) {
			tb := newTB(t.name)
			defer tb.Close()
			be, w := t.start(tb)
			defer w.close()
			ctx := context.Background()
			if err := w.load(ctx, dataset("/app", 100_000, 100)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				kv, err := be.Get(ctx, []string{"/app"})
				if err != nil || len(kv) != 100_000 {
					b.Fatalf("Get: %d keys, %v", len(kv), err)
				}
			}
		})
	}
}
