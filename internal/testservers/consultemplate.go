package testservers

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ConsulTemplateVersion is the consul-template release the consul-template dialect is
// compared with (scripts/build-consul-template.sh installs it).
const ConsulTemplateVersion = "0.42.1"

// ConsulTemplateTimeout bounds one ConsulTemplateCmd.Run unless it sets its own;
// ConsulTemplateGrace is how long a consul-template that was sent SIGINT has to exit before it
// gets SIGKILL.
const (
	ConsulTemplateTimeout = 30 * time.Second
	ConsulTemplateGrace   = 5 * time.Second
)

// ConsulTemplateBinary returns the consul-template binary the differential tests use:
// $RECONF_CONSUL_TEMPLATE, else the one scripts/build-consul-template.sh caches (under
// $RECONF_CACHE, $XDG_CACHE_HOME/reconf or ~/.cache/reconf). A missing binary fails the test:
// the oracle is never skipped.
func ConsulTemplateBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("RECONF_CONSUL_TEMPLATE")
	if bin == "" {
		bin = filepath.Join(reconfCache(), "consul-template-"+ConsulTemplateVersion, "consul-template")
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("testservers: consul-template binary %s missing (install it with scripts/build-consul-template.sh, or set RECONF_CONSUL_TEMPLATE): %v", bin, err)
	}
	return bin
}

// reconfCache is the folder the build scripts cache binaries in.
func reconfCache() string {
	if c := os.Getenv("RECONF_CACHE"); c != "" {
		return c
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "reconf")
}

// ConsulTemplateCmd is one run of consul-template (or of another binary with its command line,
// such as reconf's consul-template mode).
type ConsulTemplateCmd struct {
	Binary     string   // "" : ConsulTemplateBinary
	ConsulAddr string   // passed as -consul-addr (omitted when "")
	Args       []string // the rest of the command line
	// Env is added to the environment, which is the test's without the variables either
	// binary reads as settings (hostEnvPrefixes), so that a token, address or backend set on
	// the machine does not leak in.
	Env []string
	Dir string // working directory ("" : the test's)
	// Timeout is the deadline (0: ConsulTemplateTimeout). Past it the process gets SIGINT,
	// then SIGKILL after ConsulTemplateGrace.
	Timeout time.Duration
}

// hostEnvPrefixes start the variables consul-template reads as settings (CONSUL_HTTP_ADDR,
// VAULT_TOKEN, NOMAD_ADDR, CT_LOCAL_CONFIG, …) and reconf's own RECONF_* settings.
var hostEnvPrefixes = []string{"CONSUL_", "VAULT_", "NOMAD_", "CT_", "RECONF_"}

// ConsulTemplateEnv is this process's environment without the variables consul-template
// (and reconf in its mode) would read as settings (hostEnvPrefixes): what a test starts either
// binary with, so that only its own flags and variables configure it.
func ConsulTemplateEnv() []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc(hostEnvPrefixes, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			env = append(env, kv)
		}
	}
	return env
}

// ConsulTemplateResult is what a run printed and how it ended.
type ConsulTemplateResult struct {
	Stdout, Stderr string
	Exit           int  // the exit code; -1 when a signal ended it
	TimedOut       bool // the deadline passed and the process was stopped
}

// Run runs consul-template once in its own process group and waits for it, stopping it by
// pid when the deadline passes. It fails the test only when the binary cannot start.
func (c ConsulTemplateCmd) Run(t testing.TB) ConsulTemplateResult {
	t.Helper()
	bin := c.Binary
	if bin == "" {
		bin = ConsulTemplateBinary(t)
	}
	args := c.Args
	if c.ConsulAddr != "" {
		args = append([]string{"-consul-addr", c.ConsulAddr}, args...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.Dir
	cmd.Env = append(ConsulTemplateEnv(), c.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testservers: start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = ConsulTemplateTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	timedOut := false
	select {
	case err = <-done:
	case <-timer.C:
		timedOut = true
		pid := cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGINT) // consul-template stops on SIGINT, not SIGTERM
		select {
		case err = <-done:
		case <-time.After(ConsulTemplateGrace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			err = <-done
		}
	}
	exit := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("testservers: %s: %v", bin, err)
	}
	return ConsulTemplateResult{Stdout: stdout.String(), Stderr: stderr.String(), Exit: exit, TimedOut: timedOut}
}
