package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/file"
)

// The runner over the real file backend (fsnotify watches): changes re-render only the
// resources reading them, and a store that is unreadable at start is retried until it works.
func TestFileBackendWatch(t *testing.T) {
	c := newConfDir(t)
	data := filepath.Join(c.dir, "data.yaml")
	writeData := func(s string) {
		t.Helper()
		tmp := data + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, data); err != nil {
			t.Fatal(err)
		}
	}
	b, err := file.New(file.Config{Files: []string{data}})
	if err != nil {
		t.Fatal(err)
	}
	c.add("app", `port={{getv "/app/port"}}`, `"/app"`, "")
	c.add("db", `host={{getv "/db/host"}}`, `"/db"`, "")
	r := testRunner(t, Config{Resources: c.load(), Backend: b, Watch: true, Defaults: c.defs}, nil)
	srv := newHTTP(t, r)
	start(t, r)

	// The data file does not exist yet: the store is down, syncs are retried.
	eventually(t, "failed reads counted", func() bool {
		return strings.Contains(srv.body("/metrics"), `reconf_backend_up{backend="default"} 0`)
	})
	if code, body := srv.get("/ready"); code != 503 || !strings.Contains(body, "backend: down") {
		t.Fatalf("/ready with the store down = %d %q", code, body)
	}
	writeData("app:\n  port: 80\ndb:\n  host: h1\n")
	app, db := filepath.Join(c.out, "app"), filepath.Join(c.out, "db")
	eventually(t, "rendered once the store is up", func() bool { return fileIs(app, "port=80")() && fileIs(db, "host=h1")() })
	eventually(t, "ready", func() bool { code, _ := srv.get("/ready"); return code == 200 })
	dbInfo, _ := os.Stat(db)

	writeData("app:\n  port: 81\ndb:\n  host: h1\n")
	eventually(t, "app re-rendered", fileIs(app, "port=81"))
	if st, _ := os.Stat(db); !os.SameFile(st, dbInfo) {
		t.Fatal("db rewritten although /db did not change")
	}

	writeData("app: [unclosed\n") // a broken store (the backend keeps quiet): files stay
	if !fileIs(app, "port=81")() || !fileIs(db, "host=h1")() {
		t.Fatal("a broken store changed a file")
	}
	writeData("app:\n  port: 82\ndb:\n  host: h2\n")
	eventually(t, "recovered", func() bool { return fileIs(app, "port=82")() && fileIs(db, "host=h2")() })
}

func TestFileBackendOnetime(t *testing.T) {
	c := newConfDir(t)
	data := filepath.Join(c.dir, "data.yaml")
	b, err := file.New(file.Config{Files: []string{data}})
	if err != nil {
		t.Fatal(err)
	}
	c.add("app", `port={{getv "/app/port"}}`, `"/app"`, "")
	c.add("bad", `x={{getv "/missing"}}`, `"/app"`, "")
	// store down: every resource fails at once, naming itself
	r := testRunner(t, Config{Resources: c.load(), Backend: b, Onetime: true, Defaults: c.defs}, nil)
	err = r.Run(context.Background())
	if !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), "app") || !strings.Contains(err.Error(), "bad") {
		t.Fatalf("onetime with the store down = %v", err)
	}
	if err := os.WriteFile(data, []byte("app:\n  port: 80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = testRunner(t, Config{Resources: c.load(), Backend: b, Onetime: true, Defaults: c.defs}, nil)
	err = r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad") || strings.Contains(err.Error(), "app.toml") {
		t.Fatalf("onetime with one bad resource = %v", err)
	}
	if !fileIs(filepath.Join(c.out, "app"), "port=80")() {
		t.Fatal("the good resource was not written")
	}
}
