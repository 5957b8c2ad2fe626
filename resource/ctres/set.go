package ctres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul-template/child"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
	"github.com/reconf/reconf/template/ct"
)

// Sentinel errors; classify with errors.Is.
var (
	// ErrTemplate: a template failed to render (consul-template exits 14 on it when
	// template_error_fatal is on, its default).
	ErrTemplate = errors.New("template error")
	// ErrCommand: a template's command failed.
	ErrCommand = errors.New("command failed")
)

// Template is one consul-template `template {}` block.
type Template struct {
	T *ct.Template
	// Res writes the output: Dest, Mode (perms), UID/GID (user, group), CheckCmd (reconf's
	// check_command). Its ReloadCmd is unused: Command runs after the pass.
	Res            *resource.Resource
	Command        []string // consul-template's command: one string runs under sh -c
	CommandTimeout time.Duration
	Backup         bool // keep the previous file as DEST.bak
	CreateDestDirs bool
	// Display names the template in logs and errors ("src" => "dest").
	Display string
	// NotFatal: an error in this template is logged and the other templates go on
	// (consul-template's error_fatal = false). By default it stops the pass and fails it with
	// ErrTemplate, as consul-template's template_error_fatal does.
	NotFatal bool
}

// Set is every template of one consul-template configuration, as one resource.Dynamic.
type Set struct {
	Templates []*Template
	Store     ct.Store // its KV is replaced, per pass, by the backend Sync is given
	Once      bool     // a template that rendered is not rendered again
	Dry       bool     // print changed files instead of writing them
	Out       io.Writer
	Err       io.Writer
	// CommandEnv is added to the commands' environment (consul-template's CONSUL_HTTP_ADDR…).
	CommandEnv []string
	Log        *slog.Logger

	mu       sync.Mutex
	deps     ct.Deps
	rendered []bool
}

var _ resource.Dynamic = (*Set)(nil)

// Resource returns the resource the runner runs: named name, rendered by s.
func (s *Set) Resource(name string) *resource.Resource {
	return &resource.Resource{Name: name, Dynamic: s, UID: -1, GID: -1}
}

// Prefixes are the store prefixes the last pass read.
func (s *Set) Prefixes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deps.Prefixes)
}

// UsesServices reports whether the last pass read services or the catalog.
func (s *Set) UsesServices() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deps.Services
}

// Files are the files the last pass read with `file`.
func (s *Set) Files() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deps.Files)
}

// Sync runs one pass.
func (s *Set) Sync(ctx context.Context, b backends.Backend, o resource.SyncOptions) (resource.Result, error) {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	st := s.Store
	st.KV = b
	pass := st.Pass()
	s.mu.Lock()
	if len(s.rendered) != len(s.Templates) {
		s.rendered = make([]bool, len(s.Templates))
	}
	s.mu.Unlock()

	var (
		total    resource.Result
		deps     ct.Deps
		waiting  []string
		soft     []error // errors that fail the pass without stopping it (retried)
		commands []*Template
		undo     = map[*Template][]func() error{} // by the template whose command runs
	)
	finish := func(err error) (resource.Result, error) {
		s.mu.Lock()
		s.deps = deps
		s.mu.Unlock()
		return total, err
	}
	for i, t := range s.Templates {
		s.mu.Lock()
		done := s.Once && s.rendered[i]
		s.mu.Unlock()
		if done {
			continue
		}
		start := time.Now()
		out, err := t.T.Render(ctx, pass)
		total.RenderTime += time.Since(start)
		deps = deps.Merge(out.Deps)
		switch {
		case errors.Is(err, ct.ErrWaiting):
			log.Debug("template waits for data", "template", t.Display, "missing", out.Missing)
			waiting = append(waiting, out.Missing...)
			continue
		case errors.Is(err, ct.ErrStore):
			return finish(fmt.Errorf("%s: %w", t.Display, err))
		case err != nil && !t.NotFatal:
			return finish(fmt.Errorf("%w: %s: %w", ErrTemplate, t.Display, err))
		case err != nil:
			log.Error("template failed; going on with the others", "template", t.Display, "err", err)
			soft = append(soft, fmt.Errorf("%s: %w", t.Display, err))
			continue
		}
		wo := o
		if len(out.Deps.Vault) > 0 {
			// A file with secrets: 0600 unless perms says otherwise (consul-template writes
			// 0644), -noop shows no contents, errors are scrubbed of the output.
			wo.Secrets = true
		}
		changed, u, err := s.write(ctx, t, out.Output, wo)
		if err != nil {
			// A failed check or write leaves this destination as it was; the other templates
			// go on, so that the files already written this pass still get their commands.
			log.Error("template not written", "template", t.Display, "err", err)
			soft = append(soft, fmt.Errorf("%s: %w", t.Display, err))
			continue
		}
		s.mu.Lock()
		s.rendered[i] = true
		s.mu.Unlock()
		if !changed {
			continue
		}
		total.Changed = true
		total.Written = total.Written || !s.Dry && !o.Noop
		if s.Dry || o.Noop || len(t.Command) == 0 || t.Command[0] == "" {
			continue
		}
		owner := t
		for _, c := range commands {
			if slices.Equal(c.Command, t.Command) {
				owner = c
				break
			}
		}
		if owner == t {
			commands = append(commands, t)
		}
		if u != nil {
			undo[owner] = append(undo[owner], u)
		}
	}

	var errs []error
	for _, t := range commands {
		log.Info("executing command", "command", t.Command, "template", t.Display)
		if err := s.run(t); err != nil {
			err = fmt.Errorf("%w: failed to execute command %q from %s: %w", ErrCommand, t.Command, t.Display, err)
			for _, u := range slices.Backward(undo[t]) {
				if uerr := u(); uerr != nil {
					err = errors.Join(err, fmt.Errorf("%w: %w", resource.ErrRollback, uerr))
				} else {
					total.RolledBack = true
				}
			}
			errs = append(errs, err)
			continue
		}
		total.Reloaded = true
	}
	if err := errors.Join(errs...); err != nil {
		return finish(err)
	}
	if err := errors.Join(soft...); err != nil {
		return finish(err)
	}
	if v := s.Store.Vault; v != nil && !s.Once {
		v.Retain(deps.Vault) // every template rendered or waits: what they used is all
	}
	if len(waiting) > 0 {
		return finish(fmt.Errorf("%w: %v", resource.ErrWaiting, waiting))
	}
	return finish(nil)
}

// write puts one template's output in place (or prints it with Dry) and reports whether it
// changed, with how to put back what it replaced.
func (s *Set) write(ctx context.Context, t *Template, content []byte, o resource.SyncOptions) (bool, func() error, error) {
	if s.Dry {
		cur, err := os.ReadFile(t.Res.Dest)
		if err == nil && bytes.Equal(cur, content) {
			return false, nil, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, nil, fmt.Errorf("failed reading file: %w", err)
		}
		fmt.Fprintf(s.out(), "> %s\n%s", t.Res.Dest, content)
		return true, nil, nil
	}
	dir := filepath.Dir(t.Res.Dest)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && t.CreateDestDirs && !o.Noop {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, nil, fmt.Errorf("failed writing file: %w", err)
		}
	}
	if t.Backup && !o.Noop {
		backup(t.Res.Dest, content)
	}
	res, undo, err := t.Res.Write(ctx, content, o)
	if err != nil {
		return false, nil, err
	}
	return res.Changed, undo, nil
}

// backup keeps the destination as DEST.bak before it is replaced with different content, as
// consul-template does: a hard link to the old file (its mode and owner kept), the previous
// backup kept as DEST.old.bak until the link is made.
func backup(dest string, content []byte) {
	cur, err := os.ReadFile(dest)
	if err != nil || bytes.Equal(cur, content) {
		return
	}
	bak, old := dest+".bak", dest+".old.bak"
	_ = os.Rename(bak, old)
	if err := os.Link(dest, bak); err != nil {
		slog.Warn("could not back up the destination", "dest", dest, "err", err)
		return
	}
	_ = os.Remove(old)
}

// run runs a template's command as consul-template does: one string under sh -c, the
// environment plus CommandEnv, output on ours, killed at its timeout.
func (s *Set) run(t *Template) error {
	args, subshell, err := child.CommandPrep(t.Command)
	if err != nil {
		return fmt.Errorf("failed parsing command: %w", err)
	}
	c, err := child.New(&child.NewInput{
		Stdout:  s.out(),
		Stderr:  s.errOut(),
		Command: args[0],
		Args:    args[1:],
		Env:     append(os.Environ(), s.CommandEnv...),
		Timeout: t.CommandTimeout,
		Setpgid: subshell,
	})
	if err != nil {
		return fmt.Errorf("error creating child: %w", err)
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("child: %w", err)
	}
	return nil
}

func (s *Set) out() io.Writer {
	if s.Out == nil {
		return os.Stdout
	}
	return s.Out
}

func (s *Set) errOut() io.Writer {
	if s.Err == nil {
		return os.Stderr
	}
	return s.Err
}
