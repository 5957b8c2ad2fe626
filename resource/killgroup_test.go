package resource

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTimeoutReportedAfterGroupIsGone: a command whose children (and their children) ignore
// SIGTERM is killed at its timeout, and by the time the timeout is reported every process it
// started is gone: not one answers, not even for a moment after runCommand returned.
func TestTimeoutReportedAfterGroupIsGone(t *testing.T) {
	old := killGrace
	killGrace = 50 * time.Millisecond
	t.Cleanup(func() { killGrace = old })
	rounds := 10
	if testing.Short() {
		rounds = 3
	}
	var zombies, reaped int
	for round := range rounds {
		dir := t.TempDir()
		pids, pgidFile := filepath.Join(dir, "pids"), filepath.Join(dir, "pgid")
		// Three subshells ignoring TERM, each with a background grandchild that inherits it,
		// none holding the output pipe; the shell itself dies on SIGTERM at once, leaving
		// them to the SIGKILL.
		cmd := "echo $$ > " + pgidFile + "; for i in 1 2 3; do " +
			"(trap '' TERM; sleep 60 & echo $! >> " + pids + "; exec sleep 60) >/dev/null 2>&1 & echo $! >> " + pids + "; done; " +
			"while [ $(wc -l < " + pids + ") -lt 6 ]; do sleep 0.01; done; wait"
		start := time.Now()
		_, err := runCommand(context.Background(), cmd, 300*time.Millisecond)
		took := time.Since(start)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("round %d: err = %v, want ErrTimeout", round, err)
		}
		if strings.Contains(err.Error(), "still running") {
			t.Fatalf("round %d: %v", round, err)
		}
		// Checked at once: no eventually.
		pgid, perr := strconv.Atoi(strings.TrimSpace(readString(t, pgidFile)))
		must(t, perr)
		if running := groupMembers(pgid); len(running) != 0 {
			t.Errorf("round %d: processes %v of the group outlived the report", round, running)
		}
		list := strings.Fields(readString(t, pids))
		if len(list) != 6 {
			t.Fatalf("round %d: %d pids recorded, want 6", round, len(list))
		}
		for _, s := range list {
			pid, err := strconv.Atoi(s)
			must(t, err)
			switch {
			case errors.Is(syscall.Kill(pid, 0), syscall.ESRCH):
				reaped++
			case gone(pid):
				zombies++ // dead; its parent (init) has not collected it yet
			default:
				t.Errorf("round %d: pid %d still runs after the timeout was reported", round, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if took > 2*time.Second {
			t.Errorf("round %d: the timeout took %v to report", round, took)
		}
	}
	t.Logf("%d rounds: %d children reaped, %d dead but not yet reaped when the timeout was reported", rounds, reaped, zombies)
}
