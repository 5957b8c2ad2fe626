package runner

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/reconf/reconf/backends"
)

// fakeServices is a template.Services with the Watch that package discovery offers.
type fakeServices struct {
	mu      sync.Mutex
	web     []backends.Service
	watches int
	changed []chan<- struct{}
}

func (f *fakeServices) Service(_ context.Context, name, _, _ string) ([]backends.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "web" {
		return nil, nil
	}
	return append([]backends.Service(nil), f.web...), nil
}

func (f *fakeServices) ServiceNames(context.Context) (map[string][]string, error) {
	return map[string][]string{"web": nil}, nil
}

func (f *fakeServices) Watch(ctx context.Context, changed chan<- struct{}) error {
	f.mu.Lock()
	f.watches++
	f.changed = append(f.changed, changed)
	f.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeServices) set(s ...backends.Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.web = s
	for _, c := range f.changed {
		backends.Notify(c)
	}
}

func (f *fakeServices) nWatches() int { f.mu.Lock(); defer f.mu.Unlock(); return f.watches }

// A services change re-renders the templates that call `service`, and only those.
func TestServicesWatch(t *testing.T) {
	c := newConfDir(t)
	c.add("lb", `{{range service "web"}}{{.Address}}:{{.Port}} {{end}}`, ``, "")
	c.add("plain", `v={{getv "/a/v"}}`, `"/a"`, "")
	b := newMem()
	b.kv["/a/v"] = "1"
	svc := &fakeServices{web: []backends.Service{{ID: "w1", Name: "web", Address: "10.0.0.1", Port: 80}}}
	r := testRunner(t, Config{Resources: c.load(), Backend: b, Watch: true, Defaults: c.defs, Services: svc}, nil)
	start(t, r)
	lb, plain := filepath.Join(c.out, "lb"), filepath.Join(c.out, "plain")
	eventually(t, "first render", func() bool { return fileIs(lb, "10.0.0.1:80 ")() && fileIs(plain, "v=1")() })
	eventually(t, "services watch", func() bool { return svc.nWatches() == 1 })
	eventually(t, "plain's sync recorded", func() bool { return counter(t, r, "reconf_renders_total", "resource", "plain.toml") == 1 })
	before, _ := os.Stat(plain)
	svc.set(backends.Service{ID: "w1", Name: "web", Address: "10.0.0.1", Port: 80},
		backends.Service{ID: "w2", Name: "web", Address: "10.0.0.2", Port: 80})
	eventually(t, "lb re-rendered", fileIs(lb, "10.0.0.1:80 10.0.0.2:80 "))
	if after, _ := os.Stat(plain); !os.SameFile(before, after) {
		t.Fatal("a template without `service` was rewritten")
	}
	if n := counter(t, r, "reconf_renders_total", "resource", "plain.toml"); n != 1 {
		t.Fatalf("plain synced %v times, want 1", n)
	}
}
