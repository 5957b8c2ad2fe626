package consul

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/runner"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
	"github.com/reconf/reconf/resource"
)

// Issue 14 end to end: 50 resources, each on a prefix of its own under /many, run by the
// runner (one Watch per prefix) hold one blocking query and one connection for it at the
// agent, and a write re-renders only the resource whose keys it changed.
func TestSharedFolderRunner(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	dir := t.TempDir()
	for _, d := range []string{"conf.d", "templates", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const n = 50
	prefixes := folderPrefixes("/many", n)
	for i, p := range prefixes {
		put(t, st, p+"/k", "init")
		name := fmt.Sprintf("p%02d", i)
		tmpl := fmt.Sprintf(`v={{getv %q ""}}`, p+"/k")
		toml := fmt.Sprintf("[template]\nsrc = %q\ndest = %q\nkeys = [%q]\n", name+".tmpl", filepath.Join(dir, "out", name), p)
		for f, body := range map[string]string{"templates/" + name + ".tmpl": tmpl, "conf.d/" + name + ".toml": toml} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	c, err := New(Config{Address: srv.Addr, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	open := countConns(c)
	defs := resource.Defaults{ConfDir: dir, Log: quiet, CheckTimeout: 10 * time.Second, ReloadTimeout: 10 * time.Second}
	list, err := resource.Load(defs)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		renders = map[string]int{}
	)
	r, err := runner.New(runner.Config{Resources: list, Backend: c, Defaults: defs, Watch: true, Log: quiet,
		OnSync: func(res *resource.Resource, _ resource.Result, _ error) {
			mu.Lock()
			renders[res.Name]++
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	}()
	holds := func(i int, v string) func() error {
		return func() error {
			f := filepath.Join(dir, "out", fmt.Sprintf("p%02d", i))
			if b, err := os.ReadFile(f); err != nil || string(b) != "v="+v {
				return fmt.Errorf("%s holds %q (%v), want v=%s", f, b, err, v)
			}
			return nil
		}
	}
	for i := range n {
		testutil.Until(t, 30*time.Second, 20*time.Millisecond, holds(i, "init"))
	}
	// Get's idle connections (the first renders) close on their own after 90 s; close them
	// now. What stays open is the blocking query's, and the leader prober's while it asks.
	testutil.Eventually(t, 15*time.Second, "one blocking query, at most two connections", func() bool {
		c.transport.CloseIdleConnections()
		return c.blocking.Load() == 1 && open.Load() <= 2
	})
	snapshot := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]int, len(renders))
		for k, v := range renders {
			out[k] = v
		}
		return out
	}
	// Start-up renders (the first sync, and the one after each watch's first answer) end
	// before the writes: wait until the counts stay put for half a second.
	var before map[string]int
	testutil.Until(t, 15*time.Second, 500*time.Millisecond, func() error {
		now := snapshot()
		if fmt.Sprint(now) != fmt.Sprint(before) {
			before = now
			return fmt.Errorf("renders still changing at start-up: %v", now)
		}
		return nil
	})
	hist := map[int]int{}
	for _, v := range before {
		hist[v]++
	}
	t.Logf("start-up renders per resource (renders: resources): %v", hist)
	writes := map[int]int{}
	for w, i := range []int{3, 17, 49, 3, 0, 25, 17, 3} {
		v := fmt.Sprintf("w%d", w)
		put(t, st, prefixes[i]+"/k", v)
		writes[i]++
		testutil.Until(t, 15*time.Second, 5*time.Millisecond, holds(i, v))
	}
	testutil.Eventually(t, 10*time.Second, "a render per write", func() bool {
		after := snapshot()
		for i, k := range writes {
			name := fmt.Sprintf("p%02d.toml", i)
			if after[name]-before[name] < k {
				return false
			}
		}
		return true
	})
	after := snapshot()
	for i := range n {
		name := fmt.Sprintf("p%02d.toml", i)
		if got := after[name] - before[name]; got != writes[i] {
			t.Errorf("resource %s rendered %d times for %d writes to its keys", name, got, writes[i])
		}
	}
	if got := c.blocking.Load(); got != 1 {
		t.Errorf("%d blocking queries after the writes, want 1", got)
	}
}
