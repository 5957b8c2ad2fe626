package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
)

// confDir is a real conf.d + templates tree for resource.Load.
type confDir struct {
	t    testing.TB
	dir  string
	out  string
	defs resource.Defaults
}

func newConfDir(t testing.TB) *confDir {
	dir := t.TempDir()
	c := &confDir{t: t, dir: dir, out: filepath.Join(dir, "out")}
	for _, d := range []string{"conf.d", "templates", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.defs = resource.Defaults{ConfDir: dir, Log: quietLog(), CheckTimeout: 5 * time.Second, ReloadTimeout: 5 * time.Second}
	return c
}

func (c *confDir) write(rel, content string) {
	c.t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, rel), []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// add writes conf.d/name.toml rendering templates/name.tmpl to out/name; extra is more TOML.
func (c *confDir) add(name, tmpl, keys, extra string) {
	c.write("templates/"+name+".tmpl", tmpl)
	c.write("conf.d/"+name+".toml", fmt.Sprintf("[template]\nsrc = %q\ndest = %q\nkeys = [%s]\n%s\n",
		name+".tmpl", filepath.Join(c.out, name), keys, extra))
}

func (c *confDir) load() []*resource.Resource {
	c.t.Helper()
	list, err := resource.Load(c.defs)
	if err != nil {
		c.t.Fatal(err)
	}
	return list
}

func (c *confDir) reload() ([]*resource.Resource, error) { return resource.Load(c.defs) }

func fileIs(path, want string) func() bool {
	return func() bool { b, err := os.ReadFile(path); return err == nil && string(b) == want }
}

// realRun runs the real resource pipeline over b in watch mode.
func realRun(t *testing.T, c *confDir, b backends.Backend) *Runner {
	r := testRunner(t, Config{Resources: c.load(), Backend: b, Watch: true, Defaults: c.defs, Reload: c.reload}, nil)
	return r
}

func TestRealResourcesWatchAndReload(t *testing.T) {
	c := newConfDir(t)
	c.add("app", `name={{getv "/app/name"}}`, `"/app"`, "")
	c.add("db", `host={{getv "/db/host"}}`, `"/db"`, "")
	b := newMem()
	b.kv["/app/name"], b.kv["/db/host"] = "one", "h1"
	r := realRun(t, c, b)
	start(t, r)
	app, db := filepath.Join(c.out, "app"), filepath.Join(c.out, "db")
	eventually(t, "first render", func() bool { return fileIs(app, "name=one")() && fileIs(db, "host=h1")() })
	eventually(t, "watches", func() bool { _, _, a := b.watchCalls(); return a["/app"] == 1 && a["/db"] == 1 })
	dbInfo, _ := os.Stat(db)

	b.set("/app/name", "two")
	eventually(t, "app re-rendered", fileIs(app, "name=two"))
	if st, _ := os.Stat(db); !os.SameFile(st, dbInfo) {
		t.Fatalf("db rewritten although /db did not change")
	}

	// SIGHUP with a new template: re-rendered, watches kept.
	c.write("templates/app.tmpl", `name={{getv "/app/name"}} v2`)
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new template rendered", fileIs(app, "name=two v2"))

	// A bad reload names the file and line, and the old set keeps working.
	c.write("conf.d/db.toml", "[template]\nsrc = \"db.tmpl\"\nmode = 0644\n")
	err := r.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "db.toml") {
		t.Fatalf("bad reload = %v, want an error naming db.toml", err)
	}
	b.set("/db/host", "h2")
	eventually(t, "old set still renders", fileIs(db, "host=h2"))
	if _, per, _ := b.watchCalls(); per["/app"] != 1 || per["/db"] != 1 {
		t.Fatalf("reloads restarted watches: %v", per)
	}
}

// SIGTERM while reload_cmd hangs: the resource in flight finishes (the command is killed at its
// timeout), then Run returns nil.
func TestCancelDuringHungReloadCmd(t *testing.T) {
	c := newConfDir(t)
	marker := filepath.Join(c.dir, "reload-started")
	c.add("app", `v={{getv "/app/v"}}`, `"/app"`,
		fmt.Sprintf("reload_cmd = \"touch %s; sleep 30\"\nreload_timeout = \"500ms\"", marker))
	b := newMem()
	b.kv["/app/v"] = "1"
	r := realRun(t, c, b)
	stop := start(t, r)
	eventually(t, "reload_cmd running", func() bool { _, err := os.Stat(marker); return err == nil })
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("Run took %v to return after cancel", d)
	}
}

// The burst on the real pipeline: 1,000 writes, wait 50ms:500ms, final file correct.
func TestRealBurst(t *testing.T) {
	c := newConfDir(t)
	c.add("app", `n={{getv "/app/n"}}`, `"/app"`, `wait = "50ms:500ms"`)
	b := newMem()
	b.kv["/app/n"] = "start"
	r := realRun(t, c, b)
	start(t, r)
	out := filepath.Join(c.out, "app")
	eventually(t, "first render", fileIs(out, "n=start"))
	eventually(t, "watch", func() bool { _, _, a := b.watchCalls(); return a["/app"] == 1 })
	for i := range 1000 {
		b.set("/app/n", fmt.Sprint(i))
	}
	eventually(t, "final value", fileIs(out, "n=999"))
	eventually(t, "metrics settle", func() bool { return len(r.sem) == 0 })
	n := counter(t, r, "reconf_renders_total", "result", "written")
	if n < 2 || n > 4 {
		t.Fatalf("1 start + burst of 1000 = %v writes, want 2..4", n)
	}
}

// counter sums the counter series of name carrying label=value.
func counter(t testing.TB, r *Runner, name, label, value string) float64 {
	t.Helper()
	mfs, err := r.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// Command outcomes reach the metrics: a failing check_cmd, a failing reload_cmd (rolled back)
// and a passing pair.
func TestCommandMetrics(t *testing.T) {
	c := newConfDir(t)
	c.add("good", `v={{getv "/a/v"}}`, `"/a"`, "check_cmd = \"test -s {{.src}}\"\nreload_cmd = \"true\"")
	c.add("badcheck", `v={{getv "/a/v"}}`, `"/a"`, `check_cmd = "false"`)
	c.add("badreload", `v={{getv "/a/v"}}`, `"/a"`, `reload_cmd = "exit 3"`)
	b := newMem()
	b.kv["/a/v"] = "1"
	r := testRunner(t, Config{Resources: c.load(), Backend: b, Watch: true, Defaults: c.defs}, nil)
	srv := newHTTP(t, r)
	start(t, r)
	eventually(t, "good rendered", fileIs(filepath.Join(c.out, "good"), "v=1"))
	eventually(t, "command outcomes counted", func() bool {
		return counter(t, r, "reconf_check_total", "result", "fail") >= 1 &&
			counter(t, r, "reconf_reload_total", "result", "fail") >= 1 &&
			counter(t, r, "reconf_check_total", "result", "ok") >= 1 &&
			counter(t, r, "reconf_reload_total", "result", "ok") >= 1
	})
	m := srv.body("/metrics")
	for _, want := range []string{"reconf_rollbacks_total", "reconf_command_duration_seconds_count", "reconf_render_duration_seconds_count",
		`reconf_renders_total{resource="badcheck.toml",result="error"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if _, err := os.Stat(filepath.Join(c.out, "badcheck")); err == nil {
		t.Error("a failed check_cmd wrote the destination")
	}
	if code, body := srv.get("/ready"); code != 503 || !strings.Contains(body, "badcheck") || strings.Contains(body, "good") {
		t.Errorf("/ready = %d %q", code, body)
	}
}
