package main

import (
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/consul-template/child"
	ctconfig "github.com/hashicorp/consul-template/config"
)

// ctExec is consul-template's exec mode: once every template has rendered, the command runs
// as a supervised child; a later pass that changes a file reloads it (its reload signal, or a
// restart); when it exits, reconf exits with its code; reconf's kill signal stops it first.
type ctExec struct {
	cfg            *ctconfig.ExecConfig
	env            []string
	stdout, stderr io.Writer
	log            *slog.Logger
	exited         func(code int)

	mu sync.Mutex
	c  *child.Child
}

// newCTExec returns nil when exec mode is off.
func newCTExec(c *ctconfig.Config, stdout, stderr io.Writer, log *slog.Logger, exited func(int)) *ctExec {
	if c.Exec == nil || c.Exec.Command.Empty() {
		return nil
	}
	env := c.Exec.Env.Copy()
	env.Custom = append(ctChildEnv(c), env.Custom...)
	return &ctExec{cfg: c.Exec, env: env.Env(), stdout: stdout, stderr: stderr, log: log, exited: exited}
}

// rendered is called after every complete pass (every template rendered); changed says
// whether a file was written.
func (e *ctExec) rendered(changed bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c != nil {
		if !changed {
			return nil
		}
		return e.c.Reload()
	}
	args, subshell, err := child.CommandPrep(e.cfg.Command)
	if err != nil {
		return fmt.Errorf("failed parsing command: %w", err)
	}
	c, err := child.New(&child.NewInput{
		Stdout:       e.stdout,
		Stderr:       e.stderr,
		Command:      args[0],
		Args:         args[1:],
		Env:          e.env,
		ReloadSignal: ctconfig.SignalVal(e.cfg.ReloadSignal),
		KillSignal:   ctconfig.SignalVal(e.cfg.KillSignal),
		KillTimeout:  ctconfig.TimeDurationVal(e.cfg.KillTimeout),
		Splay:        ctconfig.TimeDurationVal(e.cfg.Splay),
		Setpgid:      subshell,
	})
	if err != nil {
		return fmt.Errorf("error creating child: %w", err)
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("child: %w", err)
	}
	e.c = c
	go e.watchExit(c)
	return nil
}

// watchExit reports the child's exit. A restart (Reload without a reload signal) replaces the
// process and its exit channel: the old process's exit is not the child's, so the new channel
// is watched instead, as consul-template's runner does.
func (e *ctExec) watchExit(c *child.Child) {
	ch := c.ExitCh()
	for {
		code, ok := <-ch
		if cur := c.ExitCh(); cur != ch { // ExitCh waits for a restart in progress
			ch = cur
			continue
		}
		if ok {
			e.log.Info("child process exited", "code", code)
			e.exited(code)
		}
		return
	}
}

// stop stops the child gracefully (its kill signal, then SIGKILL after its kill timeout).
func (e *ctExec) stop() {
	if e == nil {
		return
	}
	e.mu.Lock()
	c := e.c
	e.mu.Unlock()
	if c != nil {
		c.Stop()
	}
}
