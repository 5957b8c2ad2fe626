package resource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// argvMain is the helper program of the command table: the test binary run under the name
// argv. It prints its arguments, working folder and environment; exit=N exits with N,
// signal=N kills itself with signal N, hang=FILE ignores SIGTERM, starts a child that does
// the same, writes both pids to FILE and waits forever.
func argvMain(args []string) int {
	var b strings.Builder
	for _, a := range args {
		fmt.Fprintf(&b, "arg %q\n", a)
	}
	wd, _ := os.Getwd()
	fmt.Fprintf(&b, "wd %q\n", wd)
	env := os.Environ()
	slices.Sort(env)
	for _, e := range env {
		fmt.Fprintf(&b, "env %q\n", e)
	}
	os.Stdout.WriteString(b.String())
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "exit":
			n, _ := strconv.Atoi(v)
			return n
		case "signal":
			n, _ := strconv.Atoi(v)
			_ = syscall.Kill(os.Getpid(), syscall.Signal(n))
			time.Sleep(time.Minute)
		case "hang", "hang-child":
			signalIgnore(syscall.SIGTERM)
			if k == "hang" {
				c := exec.Command(os.Args[0], "hang-child="+v)
				if err := c.Start(); err != nil {
					return 99
				}
			}
			f, err := os.OpenFile(v, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
			if err != nil {
				return 98
			}
			fmt.Fprintln(f, os.Getpid())
			f.Close()
			select {}
		}
	}
	return 0
}

// exitStatus is the status a command's error stands for, as /bin/sh reports it.
func exitStatus(err error) int {
	var se *signaledError
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &se):
		return se.status
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// commandTable: each command with whether it may be started directly. DIR stands for a
// folder on PATH that holds argv, a file that is not executable (notexec), an executable
// script without a #! line (script) and a folder (sub).
var commandTable = []struct {
	cmd    string
	direct bool
}{
	// direct: words, paths, simple quoting
	{"argv", true},
	{"argv a b c", true},
	{"argv  a   b\tc ", true},
	{"\targv x", true},
	{`argv 'a b' "c d" e'f g'h "i"'j'k`, true},
	{`argv '' "" x''y`, true},
	{"argv '$HOME' '*' '`id`' '\\n' 'a\"b' '!' '~' '#x'", true},
	{`argv "it's" "a*b?[c]" "{x,y}" "~" "#" "a;b|c&d" "<>()" "a=b" "^"`, true},
	{"argv a=b --flag=x -n ,:+@% a.b_c-d /p/q.conf", true},
	{`argv 'héllo wörld' "ünï"`, true},
	{"argv /out/my file.conf", true}, // a {{.src}} with a space: two words, as in sh
	{"DIR/argv x", true},
	{"'argv' x", true},
	{`"DIR/argv" x`, true},
	{"argv -e '%s\\n' x", true},
	{"argv exit=3", true},
	{"argv exit=0 x", true},
	{"argv signal=15", true},
	{"argv signal=11", true},
	{"nosuch-reconf-command a b", true}, // not found: the shell's 127
	{"DIR/notexec x", true},             // 126
	{"DIR/script one two", true},        // no #!: the shell runs it
	{"DIR/sub", true},                   // a folder: 126
	{"DIR/missing x", true},             // 127
	// /bin/sh -c: builtins, keywords, expansions, operators, anything odd
	{"echo hi", false},
	{"printf '%s\\n' a", false},
	{"test -f x", false},
	{"[ -f x ]", false},
	{"true", false},
	{"'true'", false},
	{"exit 3", false},
	{"cd /tmp", false},
	{"exec argv", false},
	{"kill -0 1", false},
	{"A=1 argv", false},
	{"'A=1' argv", false},
	{"argv $HOME", false},
	{`argv "$HOME"`, false},
	{"argv ${x}", false},
	{"argv `id`", false},
	{`argv "` + "`id`" + `"`, false},
	{"argv $(id)", false},
	{`argv a\ b`, false},
	{`argv "a\b"`, false},
	{`argv "a!b"`, false},
	{"argv *.conf", false},
	{"argv ?", false},
	{"argv [ab]", false},
	{"argv {a,b}", false},
	{"argv ~", false},
	{"argv ~/x", false},
	{"argv a~b", false},
	{"argv a;argv b", false},
	{"argv a && argv b", false},
	{"argv a | argv b", false},
	{"argv &", false},
	{"argv > out", false},
	{"argv < in", false},
	{"argv 2>&1", false},
	{"(argv)", false},
	{"{ argv; }", false},
	{"argv #comment", false},
	{"argv x#y", false}, // literal to sh, but # is not in the set
	{"argv a\nargv b", false},
	{"argv a\r", false},
	{"argv 'unclosed", false},
	{`argv "unclosed`, false},
	{`argv "tab` + "\t" + `inside"`, false},
	{"argv !", false},
	{"! argv", false},
	{"argv a^b", false},
	{"argv é", false},
	{"argv \xff", false},
	{"if true; then argv; fi", false},
	{"", false},
	{"   ", false},
	{"'' x", false},
	{`"" x`, false},
}

// commandDir makes the folder DIR of commandTable, puts it first on PATH and returns it.
func commandDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	self, err := os.Executable()
	must(t, err)
	must(t, os.Symlink(self, filepath.Join(dir, "argv")))
	must(t, os.WriteFile(filepath.Join(dir, "notexec"), []byte("echo no\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "script"), []byte("echo script \"$@\"\nexit 5\n"), 0o755))
	must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return dir
}

// TestCommandTable: every command of the table is classified as the table says, and each one
// that may start directly gives, through runCommand, the same arguments, working folder,
// environment, output and exit status as through /bin/sh -c.
func TestCommandTable(t *testing.T) {
	dir := commandDir(t)
	ctx := context.Background()
	direct := 0
	for _, tc := range commandTable {
		cmd := strings.ReplaceAll(tc.cmd, "DIR", dir)
		argv, ok := directArgs(cmd)
		if ok != tc.direct {
			t.Errorf("directArgs(%q) = %q, %v; want direct %v", cmd, argv, ok, tc.direct)
			continue
		}
		if !ok {
			continue
		}
		direct++
		got, gerr := runCommand(ctx, cmd, time.Minute)
		want, werr := runShell(ctx, cmd, time.Minute)
		if gs, ws := exitStatus(gerr), exitStatus(werr); gs != ws || gs < 0 {
			t.Errorf("%q: exit status %d (%v) directly, %d (%v) with /bin/sh -c", cmd, gs, gerr, ws, werr)
		}
		if strings.Contains(cmd, "signal=") {
			continue // the shell also prints the signal's name
		}
		if string(got) != string(want) {
			t.Errorf("%q: output differs\ndirectly:\n%s\nwith /bin/sh -c:\n%s", cmd, got, want)
		}
		if strings.HasPrefix(argv[0], "argv") || strings.HasSuffix(argv[0], "/argv") {
			var args []string
			for _, l := range strings.Split(string(want), "\n") {
				if q, ok := strings.CutPrefix(l, "arg "); ok {
					a, err := strconv.Unquote(q)
					must(t, err)
					args = append(args, a)
				}
			}
			if !slices.Equal(args, argv[1:]) {
				t.Errorf("%q: directArgs %q, the shell passed %q", cmd, argv[1:], args)
			}
		}
	}
	if n := len(commandTable); direct < 20 || n-direct < 40 {
		t.Errorf("table: %d direct, %d shell", direct, n-direct)
	}
	t.Logf("%d commands: %d run directly and compared with /bin/sh -c, %d kept for the shell", len(commandTable), direct, len(commandTable)-direct)
}

// TestCommandEnvironment: the environment of a command started directly is what /bin/sh
// passes on, whatever PWD says and with names the shell drops.
func TestCommandEnvironment(t *testing.T) {
	dir := commandDir(t)
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(real, link))
	t.Chdir(real)
	t.Setenv("a-b", "dropped by the shell")
	t.Setenv("X_EMPTY", "")
	t.Setenv("X_ODD", "a=b c\td$`")
	for _, pwd := range []string{real, link, link + "/", real + "/../" + filepath.Base(real), "/nonexistent", "relative", "", "-"} {
		if pwd == "-" {
			os.Unsetenv("PWD") // restored by the Setenv below's cleanup
		} else {
			t.Setenv("PWD", pwd)
		}
		for _, cmd := range []string{"argv x", dir + "/argv y"} {
			got, gerr := runCommand(context.Background(), cmd, time.Minute)
			want, werr := runShell(context.Background(), cmd, time.Minute)
			if gerr != nil || werr != nil || string(got) != string(want) {
				t.Errorf("PWD=%q %q: directly (%v):\n%s\nwith /bin/sh -c (%v):\n%s", pwd, cmd, gerr, got, werr, want)
			}
		}
	}
}

// TestDirectCommandTimeoutKillsGroup: a command started directly that ignores SIGTERM, with
// a child that does too, is killed at its timeout like the same command under /bin/sh -c,
// and every process it started is gone when the timeout is reported.
func TestDirectCommandTimeoutKillsGroup(t *testing.T) {
	commandDir(t)
	old := killGrace
	killGrace = 50 * time.Millisecond
	t.Cleanup(func() { killGrace = old })
	for _, via := range []string{"direct", "shell"} {
		pids := filepath.Join(t.TempDir(), "pids")
		cmd := "argv hang=" + pids
		if _, ok := directArgs(cmd); !ok {
			t.Fatalf("%q is not run directly", cmd)
		}
		runner := runCommand
		if via == "shell" {
			runner = runShell
		}
		// Wait, with a deadline, until both processes are up before the timeout can strike.
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			defer cancel()
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if b, err := os.ReadFile(pids); err == nil && strings.Count(string(b), "\n") == 2 {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		_, err := runner(ctx, cmd, time.Minute)
		if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "still running") {
			t.Fatalf("%s: err = %v, want context.Canceled", via, err)
		}
		list := strings.Fields(readString(t, pids))
		if len(list) != 2 {
			t.Fatalf("%s: pids %q, want 2", via, list)
		}
		for _, s := range list {
			pid, err := strconv.Atoi(s)
			must(t, err)
			if !gone(pid) {
				t.Errorf("%s: pid %d still runs after the command was reported killed", via, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	// And the timeout itself, started directly.
	_, err := runCommand(context.Background(), "sleep 60", 100*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("sleep 60: err = %v, want ErrTimeout", err)
	}
}

func signalIgnore(sig syscall.Signal) { signal.Ignore(sig) }
