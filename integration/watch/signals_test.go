package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUP adds a resource and then a broken one while reconf watches etcd: SIGHUP renders
// the new resource; the broken template is logged with its file and line, reconf keeps
// running and the resources it had still follow changes.
func TestSIGHUP(t *testing.T) {
	s := newEnv(t).get(t, "etcd")
	dir := t.TempDir()
	const prefix = "/hup"
	s.Put(t, prefix+"/w/a", "1")
	confdir, dest := pairsConfdir(t, dir, prefix)
	p := startReconf(t, dir, watchArgs(s, confdir)...)
	waitFile(t, p, dest, "a=1\n", startDeadline, "first render")

	// A new resource and template, picked up by SIGHUP.
	added := filepath.Join(dir, "out", "added.conf")
	addResource(t, confdir, "added", fmt.Sprintf("dest = %q\nprefix = %q\nkeys = [\"/w\"]", added, prefix),
		"added: {{getv \"/w/a\"}}\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFile(t, p, added, "added: 1\n", changeDeadline, "resource added by SIGHUP")

	// A broken template (line 3), then SIGHUP: an error naming the file and line.
	off := len(p.output())
	broken := filepath.Join(dir, "out", "broken.conf")
	addResource(t, confdir, "broken", fmt.Sprintf("dest = %q\nprefix = %q\nkeys = [\"/w\"]", broken, prefix),
		"line one\nline two\n{{if}}broken{{end}}\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line := waitLog(t, p, off, regexp.MustCompile(`broken\.tmpl:3\b`), changeDeadline, "no error naming broken.tmpl:3 after SIGHUP")
	t.Logf("broken template: %s", line)
	if !strings.Contains(line, "level=ERROR") && !strings.Contains(line, "level=WARN") {
		t.Errorf("the broken template is not logged as an error: %s", line)
	}
	if p.exited() {
		t.Fatalf("reconf exited after a SIGHUP with a broken template\n%s", p.tail(30))
	}
	if _, err := os.Stat(broken); err == nil {
		t.Errorf("the broken resource wrote %s: %q", broken, readFile(broken))
	}

	// The resources that were running still follow changes.
	s.Put(t, prefix+"/w/a", "2")
	waitFile(t, p, dest, "a=2\n", changeDeadline, "old resource after a failed reload")
	waitFile(t, p, added, "added: 2\n", changeDeadline, "added resource after a failed reload")
}

// TestSIGTERMDuringReload sends SIGTERM while reload_cmd hangs (sleep 600, reload_timeout
// 5s): reconf exits 0 within a deadline and leaves no process of the reload behind.
func TestSIGTERMDuringReload(t *testing.T) {
	s := newEnv(t).get(t, "etcd")
	dir := t.TempDir()
	const prefix = "/term"
	s.Put(t, prefix+"/w/a", "1")
	confdir := filepath.Join(dir, "confdir")
	dest := filepath.Join(dir, "hung.conf")
	pidFile := filepath.Join(dir, "reload.pid")
	// The shell writes its pid (its process group: commands run in their own group) and
	// becomes the sleep.
	addResource(t, confdir, "hung", fmt.Sprintf("dest = %q\nprefix = %q\nkeys = [\"/w\"]\nreload_timeout = \"5s\"\nreload_cmd = \"echo $$ > %s; exec sleep 600\"",
		dest, prefix, pidFile), pairsTemplate)
	p := startReconf(t, dir, watchArgs(s, confdir)...)
	var pid int
	eventually(t, startDeadline, "reload_cmd never started\n"+p.tail(20), func() bool {
		n, err := strconv.Atoi(strings.TrimSpace(readFile(pidFile)))
		if err != nil || !running(n) || !strings.Contains(cmdline(n), "sleep") {
			return false
		}
		pid = n
		return true
	})
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	const within = 15 * time.Second
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("reconf still running %v after SIGTERM during a hung reload_cmd\n%s", within, p.tail(30))
	}
	took := time.Since(sent)
	t.Logf("reconf exited %v after SIGTERM (reload_timeout 5s)", took.Round(time.Millisecond))
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("reconf exit code %d after SIGTERM, want 0\n%s", code, p.tail(30))
	}
	eventually(t, 5*time.Second, fmt.Sprintf("reload_cmd's process group %d outlived reconf", pid), func() bool {
		return len(groupMembers(pid)) == 0
	})
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	st := procStat(pid)
	return st != nil && st[2] != "Z"
}

// procStat returns the fields of /proc/<pid>/stat with the command name dropped (so that
// index 2 is the state and 4 the process group), nil if there is no such process.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return append([]string{s[:strings.IndexByte(s, ' ')], "comm"}, strings.Fields(s[i+1:])...)
}

// cmdline returns the command line of pid, arguments joined by spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// groupMembers lists the live (non-zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st := procStat(pid)
		if st != nil && st[2] != "Z" && st[4] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}
