package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testservers"
)

// bin is the reconf binary TestMain builds, with a version and commit set by -ldflags.
var bin string

const (
	testVersion = "9.8.7-test"
	testCommit  = "c0ffee1"
)

func TestMain(m *testing.M) {
	testservers.RunWithReconf(m, &bin, "-X main.version="+testVersion+" -X main.commit="+testCommit)
}

// result is one finished run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// cleanEnv is the test process's environment without RECONF_* variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runBin runs the binary to completion (deadline one minute) with env added to a clean
// environment.
func runBin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running reconf %q: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// noConfig is a -config-file that does not exist, so that no /etc/reconf/reconf.toml leaks in.
func noConfig(t *testing.T) []string {
	return []string{"-config-file", filepath.Join(t.TempDir(), "absent.toml")}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    []string
		code   int
		stderr string // regexp the whole of stderr must match
	}{
		{"unknown flag", []string{"-bogus"}, nil, 2, `^reconf: flag provided but not defined: -bogus\n$`},
		{"double dash bad value", []string{"--interval", "soon"}, nil, 2, `^reconf: invalid value "soon" for flag -interval: [^\n]*\n$`},
		{"unknown backend", []string{"-backend", "etcd3"}, nil, 2, `^reconf: unknown backend "etcd3" \(known: [^\n]*consul[^\n]*etcd[^\n]*\)\n$`},
		{"unknown backend from env", nil, []string{"RECONF_BACKEND=nope"}, 2, `^reconf: unknown backend "nope" \(known: [^\n]*\)\n$`},
		{"bad env value", nil, []string{"RECONF_INTERVAL=soon"}, 2, `^reconf: RECONF_INTERVAL: invalid value "soon": [^\n]*\n$`},
		{"bad log level", []string{"-log-level", "loud"}, nil, 2, `^reconf: -log-level: "loud" is not [^\n]*\n$`},
		{"bad wait", []string{"-wait", "soon:later"}, nil, 2, `^reconf: -wait: [^\n]*\n$`},
		{"stray argument", []string{"run"}, nil, 2, `^reconf: unexpected argument "run"[^\n]*\n$`},
		{"help", []string{"-h"}, nil, 0, `^$`},
		{"register is dispatched", []string{"register", "-bogus"}, nil, 2, `(?s)reconf register.*-service`},
		{"deregister is dispatched", []string{"deregister", "-bogus"}, nil, 2, `(?s)reconf deregister.*-service`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(noConfig(t), tc.args...)
			if strings.HasSuffix(tc.name, "dispatched") {
				args = tc.args // a subcommand comes first
			}
			r := runBin(t, tc.env, args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			if !regexp.MustCompile(tc.stderr).MatchString(r.stderr) {
				t.Errorf("stderr %q does not match %s", r.stderr, tc.stderr)
			}
		})
	}
}

func TestHelpListsFlags(t *testing.T) {
	r := runBin(t, nil, "--help")
	for _, f := range []string{"-backend", "-node", "-confdir", "-onetime", "-log-format", "-wait", "-services-prefix"} {
		if !strings.Contains(r.stdout, "  "+f+" ") && !strings.Contains(r.stdout, "  "+f+"\n") {
			t.Errorf("help lacks %s:\n%s", f, r.stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"-version"}, {"--version"}, {"registrator", "--version"}} {
		r := runBin(t, nil, args...)
		want := fmt.Sprintf("reconf %s (commit %s, %s %s/%s)\n", testVersion, testCommit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		if r.code != 0 || r.stdout != want {
			t.Errorf("%s: exit %d stdout %q, want 0 %q", args, r.code, r.stdout, want)
		}
	}
	// Without -ldflags the version comes from the build info.
	if v := versionString(); !strings.HasPrefix(v, "reconf ") || !strings.Contains(v, runtime.Version()) {
		t.Errorf("versionString() = %q", v)
	}
}

func TestBackendUnreachableOnetime(t *testing.T) {
	// Nothing listens on port 1: the resource cannot be read, so -onetime exits 1.
	dir := exampleConfDir(t, filepath.Join(t.TempDir(), "haproxy.cfg"))
	r := runBin(t, nil, append(noConfig(t), "-onetime", "-confdir", dir, "-backend", "etcd",
		"-node", "127.0.0.1:1")...)
	if r.code != 1 {
		t.Errorf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
}
