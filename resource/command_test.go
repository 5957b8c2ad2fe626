package resource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gone reports whether pid no longer runs (exited, or a zombie awaiting its reaper).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestHungReloadKilledWithChildren(t *testing.T) {
	f := newFixture(t)
	dest := f.dest("app.conf")
	pidFile := f.dest("child.pid")
	must(t, os.WriteFile(dest, []byte("old\n"), 0o644))
	r := f.one(tomlFor(dest, "reload_timeout = \"200ms\"\nreload_cmd = 'sleep 60 & echo $! > "+pidFile+"; sleep 60'\n"), "new\n")
	res, err := r.Apply(context.Background(), prodKV, f.opts())
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrReload) {
		t.Fatalf("err = %v, want ErrReload and ErrTimeout", err)
	}
	if !res.RolledBack || readString(t, dest) != "old\n" {
		t.Errorf("result %+v, dest %q", res, readString(t, dest))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(readString(t, pidFile)))
	must(t, err)
	eventually(t, 10*time.Second, "the background child to die", func() bool { return gone(pid) })
}

func TestCommandIgnoringTERMIsKilled(t *testing.T) {
	old := killGrace
	killGrace = 100 * time.Millisecond
	t.Cleanup(func() { killGrace = old })
	pidFile := filepath.Join(t.TempDir(), "pid")
	_, err := runCommand(context.Background(), "trap '' TERM; sleep 60 & echo $! > "+pidFile+"; wait", 100*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(readString(t, pidFile)))
	must(t, err)
	eventually(t, 10*time.Second, "the child to die", func() bool { return gone(pid) })
}

func TestCommandContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := runCommand(ctx, "sleep 60", time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCommandOutputAndBackgroundDaemon(t *testing.T) {
	out, err := runCommand(context.Background(), "echo out; echo err >&2; exit 4", time.Minute)
	if err == nil || !strings.Contains(string(out), "out") || !strings.Contains(string(out), "err") {
		t.Errorf("runCommand = %q, %v", out, err)
	}
	// A command that leaves a daemon holding stdout succeeds once the shell exits.
	old := pipeGrace
	pipeGrace = 100 * time.Millisecond
	t.Cleanup(func() { pipeGrace = old })
	pidFile := filepath.Join(t.TempDir(), "pid")
	if _, err := runCommand(context.Background(), "sleep 60 & echo $! > "+pidFile, time.Minute); err != nil {
		t.Errorf("daemonizing command: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(readString(t, pidFile)))
	must(t, err)
	must(t, syscall.Kill(pid, syscall.SIGKILL))
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 4}
	_, _ = b.Write([]byte("abc"))
	_, _ = b.Write([]byte("defg"))
	if got := string(b.Bytes()); got != "…defg" {
		t.Errorf("tail = %q", got)
	}
}

func TestExpandCommand(t *testing.T) {
	got, err := expandCommand("check {{.src}} {{.dest}}", "/a/.b123", "/a/b")
	if err != nil || got != "check /a/.b123 /a/b" {
		t.Errorf("expandCommand = %q, %v", got, err)
	}
	if _, err := expandCommand("{{.nope}}", "", ""); err == nil {
		t.Error("unknown field: no error")
	}
}
