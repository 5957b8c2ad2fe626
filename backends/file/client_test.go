package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
)

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGetFoldersFilterAndOrder(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "conf", "a.yaml"), "app:\n  name: a\n  port: 1\n")
	write(t, filepath.Join(dir, "conf", "b.yml"), "app:\n  name: b\n")
	write(t, filepath.Join(dir, "conf", "sub", "c.yaml"), "app:\n  db:\n    host: c\n")
	write(t, filepath.Join(dir, "conf", "notes.txt"), "not: [yaml\n")
	write(t, filepath.Join(dir, "conf", "d.json"), `{"app": {"json": true}}`)
	write(t, filepath.Join(dir, "single.txt"), "app:\n  single: yes\n") // named: read whatever its name
	if err := os.Symlink(filepath.Join(dir, "conf", "sub", "c.yaml"), filepath.Join(dir, "conf", "link.yaml")); err != nil {
		t.Fatal(err)
	}

	c := newClient(t, Config{Files: []string{filepath.Join(dir, "conf"), filepath.Join(dir, "single.txt")}, Filter: "*.y*ml"})
	got, err := c.Get(context.Background(), []string{"/app"})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, got, map[string]string{
		"/app/name":    "b", // b.yml is read after a.yaml
		"/app/port":    "1",
		"/app/db/host": "c",
		"/app/single":  "true",
	})

	// The default filter reads every file in a folder: notes.txt does not parse, so Get fails
	// naming it, with no partial data.
	c = newClient(t, Config{Files: []string{filepath.Join(dir, "conf")}})
	got, err = c.Get(context.Background(), []string{"/"})
	if err == nil || !errors.Is(err, ErrParse) || !strings.Contains(err.Error(), "notes.txt") || got != nil {
		t.Errorf("Get over a bad file = %v, %v; want nil and an ErrParse error naming notes.txt", got, err)
	}
}

func TestGetPathMatching(t *testing.T) {
	name := filepath.Join(t.TempDir(), "data.yaml")
	write(t, name, "app:\n  db:\n    host: h\n  db-replica:\n    host: r\n  dbx: x\n")
	c := newClient(t, Config{Files: []string{name}})
	got, err := c.Get(context.Background(), []string{"/app/db"})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, got, map[string]string{"/app/db/host": "h"})
}

func TestGetMissingFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "missing.yaml")
	c := newClient(t, Config{Files: []string{name}})
	_, err := c.Get(context.Background(), []string{"/"})
	if !errors.Is(err, backends.ErrUnavailable) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), name) {
		t.Errorf("Get of a missing file: %v; want ErrUnavailable and ErrNotExist naming the file", err)
	}
	// The file is named once.
	if want := "file " + name + ": backend unavailable: lstat: no such file or directory"; err.Error() != want {
		t.Errorf("Get of a missing file: %v\nwant %s", err, want)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != name {
		t.Errorf("Get of a missing file: %v does not unwrap to the *os.PathError", err)
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Files: []string{""}},
		{Files: []string{"x.yaml"}, Filter: "[unclosed"},
		{Files: []string{"x.yaml"}, Resync: -time.Second},
	} {
		if _, err := New(cfg); !errors.Is(err, backends.ErrConfig) {
			t.Errorf("New(%+v) = %v; want ErrConfig", cfg, err)
		}
	}
	_, err := backends.New(Name, backends.Options{})
	if !errors.Is(err, backends.ErrConfig) || !strings.Contains(err.Error(), "-file") {
		t.Errorf("backends.New(file) with no files: %v; want ErrConfig saying -file", err)
	}
	cfg := FromOptions(backends.Options{Files: []string{"a"}})
	if cfg.Filter != "*" {
		t.Errorf("default filter %q, want *", cfg.Filter)
	}
}

// watching runs Watch in the background and returns its signal channel.
func watching(t *testing.T, c *Client, prefixes ...string) chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, prefixes, changed) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
	})
	return changed
}

// signalled reports whether a signal came within d.
func signalled(c chan struct{}, d time.Duration) bool {
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}

// until repeats write until a signal follows it: Watch may not have added its fsnotify
// watches yet when the first write happens.
func until(t *testing.T, changed chan struct{}, write func(i int)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		write(i)
		if signalled(changed, 300*time.Millisecond) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no signal within 10s")
		}
	}
}

func TestWatchInPlaceWritesAndErrors(t *testing.T) {
	name := filepath.Join(t.TempDir(), "data.yaml")
	write(t, name, "app:\n  k: 0\nother: 0\n")
	c := newClient(t, Config{Files: []string{name}})
	changed := watching(t, c, "/app")
	until(t, changed, func(i int) { write(t, name, "app:\n  k: "+string(rune('a'+i%26))+"\nother: 0\n") })

	// A write that leaves /app as it is does not signal.
	b, _ := os.ReadFile(name)
	write(t, name, strings.Replace(string(b), "other: 0", "other: 1", 1)+"# a comment\n")
	if signalled(changed, 500*time.Millisecond) {
		t.Error("a change outside the watched prefix signalled")
	}
	// A broken file does not signal (stale beats partial); fixing it does.
	write(t, name, "app: [broken\n")
	if signalled(changed, 500*time.Millisecond) {
		t.Error("a file that does not parse signalled")
	}
	write(t, name, strings.Replace(string(b), "other: 0", "other: 1", 1))
	if !signalled(changed, 10*time.Second) {
		t.Error("no signal after the file was fixed")
	}
}

func TestWatchFolderNewFileAndLateFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	// The folder does not exist yet: Get fails, the resync finds it when it comes.
	c := newClient(t, Config{Files: []string{dir}, Filter: "*.yaml", Resync: 100 * time.Millisecond})
	changed := watching(t, c, "/app")
	until(t, changed, func(i int) {
		write(t, filepath.Join(dir, "a.yaml"), "app:\n  a: "+string(rune('a'+i%26))+"\n")
	})
	// A new file in a new sub-folder is seen.
	until(t, changed, func(i int) {
		write(t, filepath.Join(dir, "sub", "b.yaml"), "app:\n  b: "+string(rune('a'+i%26))+"\n")
	})
	// A file that the filter skips does not signal.
	write(t, filepath.Join(dir, "sub", "b.yaml.swp"), "app: [junk\n")
	if signalled(changed, 500*time.Millisecond) {
		t.Error("a file skipped by the filter signalled")
	}
}
