package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Deadlines. A change must reach the file within changeDeadline (the latency target itself
// lives in the benchmarks); recovery after an outage includes the backends' reconnect backoff.
const (
	changeDeadline  = 10 * time.Second
	startDeadline   = 20 * time.Second
	recoverDeadline = 45 * time.Second
)

// pairsTemplate renders every key under /w as name=value lines.
const pairsTemplate = "{{range gets \"/w/*\"}}{{base .Key}}={{.Value}}\n{{end}}"

// pairs is what pairsTemplate renders for data (relative names under /w).
func pairs(data map[string]string) string {
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%s\n", n, data[n])
	}
	return b.String()
}

// watchArgs are the flags of a watching reconf: the interval is long so that only the watch
// can explain a change.
func watchArgs(s *store, confdir string, extra ...string) []string {
	return append(append([]string{"-watch", "-interval", "3600", "-confdir", confdir, "-log-level", "debug"}, s.args()...), extra...)
}

// pairsConfdir writes a confdir with one resource rendering prefix/w to dir/out.
func pairsConfdir(t *testing.T, dir, prefix string) (confdir, dest string) {
	t.Helper()
	confdir, dest = filepath.Join(dir, "confdir"), filepath.Join(dir, "out", "pairs.conf")
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		t.Fatal(err)
	}
	addResource(t, confdir, "pairs", fmt.Sprintf("dest = %q\nprefix = %q\nkeys = [\"/w\"]", dest, prefix), pairsTemplate)
	return confdir, dest
}

// waitFile waits until path holds want, failing with the process log.
func waitFile(t *testing.T, p *proc, path, want string, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	for readFile(path) != want {
		if p.exited() {
			t.Fatalf("%s: reconf exited (%v) before %s held %q\n%s", what, p.cmd.ProcessState, path, want, p.tail(40))
		}
		if time.Since(start) > within {
			t.Fatalf("%s: %s still holds %q, want %q after %v\n%s", what, path, readFile(path), want, within, p.tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestChange puts and deletes keys in each real store while reconf watches: the file follows.
func TestChange(t *testing.T) {
	e := newEnv(t)
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := e.get(t, name)
			dir := t.TempDir()
			const prefix = "/chg"
			data := map[string]string{"a": "1", "keep": "k"}
			for k, v := range data {
				s.Put(t, prefix+"/w/"+k, v)
			}
			confdir, dest := pairsConfdir(t, dir, prefix)
			p := startReconf(t, dir, watchArgs(s, confdir)...)
			waitFile(t, p, dest, pairs(data), startDeadline, "first render")

			data["b"] = "2"
			s.Put(t, prefix+"/w/b", "2")
			d1 := waitFile(t, p, dest, pairs(data), changeDeadline, "new key")

			data["a"] = "changed value"
			s.Put(t, prefix+"/w/a", "changed value")
			d2 := waitFile(t, p, dest, pairs(data), changeDeadline, "changed key")

			delete(data, "a")
			s.Del(t, prefix+"/w/a")
			d3 := waitFile(t, p, dest, pairs(data), changeDeadline, "deleted key")
			t.Logf("%s: put→file %v, change→file %v, delete→file %v (CPU shared; not a latency measurement)",
				name, d1.Round(time.Millisecond), d2.Round(time.Millisecond), d3.Round(time.Millisecond))
		})
	}
}

// retryLine matches the log lines that say reconf noticed the store is gone (and retries).
var retryLine = regexp.MustCompile(`(?i)fail|retry|restart|reconnect|rebuild|unavailable|refused`)

// waitLog waits until the process log, past offset, has a line matching re; it returns that
// line.
func waitLog(t *testing.T, p *proc, offset int, re *regexp.Regexp, within time.Duration, what string) string {
	t.Helper()
	var line string
	eventually(t, within, what+"\n"+p.tail(30), func() bool {
		out := p.output()
		if len(out) < offset {
			return false
		}
		for _, l := range strings.Split(out[offset:], "\n") {
			if re.MatchString(l) {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

// fileState is what must not change while the store is away.
type fileState struct {
	content string
	mtime   time.Time
	ino     uint64
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fileState{content: readFile(path), mtime: st.ModTime(), ino: inode(st)}
}

// assertUntouched checks that dest still holds its last good content, was not rewritten, and
// that no stage file was left next to it.
func assertUntouched(t *testing.T, dest string, before fileState, when string) {
	t.Helper()
	now := stateOf(t, dest)
	if now.content == "" || now != before {
		t.Fatalf("%s: dest changed: was %q (mtime %v, inode %d), now %q (mtime %v, inode %d)",
			when, before.content, before.mtime, before.ino, now.content, now.mtime, now.ino)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	for _, e := range entries {
		if e.Name() != filepath.Base(dest) {
			t.Errorf("%s: unexpected file %s next to dest", when, e.Name())
		}
	}
}

// TestOutage stops, freezes and late-starts each real store while reconf watches: the file
// keeps its last good content while the store is away and follows changes once it is back,
// without restarting reconf.
func TestOutage(t *testing.T) {
	e := newEnv(t)
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := e.get(t, name)
			dir := t.TempDir()
			const prefix = "/out"
			data := map[string]string{"a": "1", "keep": "k"}
			// seed writes all of data: Redis and Consul (-dev) forget everything on restart.
			seed := func() {
				for k, v := range data {
					s.Put(t, prefix+"/w/"+k, v)
				}
			}
			seed()
			confdir, dest := pairsConfdir(t, dir, prefix)
			p := startReconf(t, dir, watchArgs(s, confdir)...)
			waitFile(t, p, dest, pairs(data), startDeadline, "first render")

			// 1. Stop: reconf notices, retries, and leaves the file alone.
			before := stateOf(t, dest)
			off := len(p.output())
			s.srv.Stop(t)
			line := waitLog(t, p, off, retryLine, recoverDeadline, "no retry logged after the store stopped")
			t.Logf("%s down: %s", name, line)
			if p.exited() {
				t.Fatalf("reconf exited when the store stopped\n%s", p.tail(30))
			}
			assertUntouched(t, dest, before, "store stopped")

			s.srv.Start(t)
			data["a"] = "2"
			seed()
			d := waitFile(t, p, dest, pairs(data), recoverDeadline, "change after restart")
			t.Logf("%s restarted: change reached the file in %v", name, d.Round(time.Millisecond))

			// 2. Freeze (SIGSTOP) past the stall-detection intervals (10s), then thaw.
			before = stateOf(t, dest)
			s.srv.Pause(t)
			frozen := time.Now()
			for time.Since(frozen) < 12*time.Second {
				if p.exited() {
					s.srv.Resume(t)
					t.Fatalf("reconf exited while the store was frozen\n%s", p.tail(30))
				}
				time.Sleep(200 * time.Millisecond)
			}
			s.srv.Resume(t)
			assertUntouched(t, dest, before, "store frozen")
			data["a"] = "3"
			s.Put(t, prefix+"/w/a", "3")
			d = waitFile(t, p, dest, pairs(data), recoverDeadline, "change after the store thawed")
			t.Logf("%s thawed: change reached the file in %v", name, d.Round(time.Millisecond))

			// 3. reconf starts while the store is down, then the store comes up.
			p.stop(t, 15*time.Second)
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("reconf exit code %d after SIGTERM, want 0", code)
			}
			s.srv.Stop(t)
			if err := os.Remove(dest); err != nil {
				t.Fatal(err)
			}
			p = startReconf(t, dir, watchArgs(s, confdir)...)
			line = waitLog(t, p, 0, retryLine, recoverDeadline, "no retry logged with the store down at start")
			t.Logf("%s down at start: %s", name, line)
			if p.exited() {
				t.Fatalf("reconf exited because the store was down at start\n%s", p.tail(30))
			}
			if _, err := os.Stat(dest); err == nil {
				t.Fatalf("dest written while the store was down: %q", readFile(dest))
			}
			s.srv.Start(t)
			data["a"] = "4"
			seed()
			d = waitFile(t, p, dest, pairs(data), recoverDeadline, "render once the store came up")
			t.Logf("%s came up: first render in %v", name, d.Round(time.Millisecond))
		})
	}
}
