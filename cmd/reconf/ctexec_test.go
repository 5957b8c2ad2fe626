package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCTModeExecRestartsAfterSIGHUP: in exec mode a change that writes a file restarts the
// child (no exec reload_signal) without reconf taking the replaced process's exit for the
// child's, also after a SIGHUP reloaded the same templates: the reloaded set keeps watching
// its data, and its own pass decides whether the child restarts.
func TestCTModeExecRestartsAfterSIGHUP(t *testing.T) {
	t.Parallel()
	dir := ctDir(t, map[string]string{
		"data.yaml":  ctData,
		"a.tpl":      `name={{ key "app/name" }}`,
		"config.hcl": "template {\n  source = \"a.tpl\"\n  destination = \"a.out\"\n}\n",
	})
	starts := filepath.Join(dir, "starts.log")
	started := func(n int) func() bool {
		return func() bool {
			b, _ := os.ReadFile(starts)
			return strings.Count(string(b), "start\n") == n
		}
	}
	p := ctStart(t, bin, dir, append(fileArgs(dir), "-config", "config.hcl", "-log-level", "info",
		"-exec", "echo start >> "+starts+"; exec sleep 600")...)
	waitFor(t, "the child started", 20*time.Second, started(1))
	writeTo(t, filepath.Join(dir, "data.yaml"), "app:\n  name: api\n  port: \"80\"\n")
	waitFor(t, "the child restarted after a change", 20*time.Second, started(2))
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the reload", 20*time.Second, func() bool { return strings.Contains(p.stderr.String(), "msg=reloaded") })
	// The reloaded set watches what it reads (it used to lose the watch when it read the same
	// keys as the set it replaced), writes a.out and restarts the child.
	writeTo(t, filepath.Join(dir, "data.yaml"), "app:\n  name: db\n  port: \"80\"\n")
	waitFor(t, "a.out after the reload", 20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "a.out"))
		return string(b) == "name=db"
	})
	waitFor(t, "the child restarted after a change following SIGHUP", 20*time.Second, started(3))
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 40*time.Second); code != 12 {
		t.Errorf("exit %d after SIGINT, want 12", code)
	}
}
