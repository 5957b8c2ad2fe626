package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/template"
)

// relative keeps the keys of kv under the resource's prefixes, stored relative to Prefix with
// a leading '/': with prefix /prod the backend key /prod/db/host is /db/host. When that changes
// nothing (prefix "/", clean keys, none outside the prefixes: the common case with a big
// snapshot) it returns kv itself, which the render only reads; otherwise it builds a new map
// whose keys are substrings of kv's where possible, so no key is copied.
func (r *Resource) relative(kv map[string]string) map[string]string {
	prefix := cleanPrefix(r.Prefix)
	ps := r.Prefixes()
	rel := func(k string) string {
		if prefix != "/" && backends.UnderPrefix(k, prefix) {
			k = k[len(prefix):]
		}
		if k == "" || k[0] != '/' {
			k = "/" + k
		}
		return path.Clean(k) // == path.Join("/", k); allocates only when k is not clean
	}
	same := true
	for k := range kv {
		if !underAny(k, ps) || rel(k) != k {
			same = false
			break
		}
	}
	if same {
		return kv
	}
	out := make(map[string]string, len(kv))
	for k, v := range kv {
		if underAny(k, ps) {
			out[rel(k)] = v
		}
	}
	return out
}

// underAny reports whether key lies under one of the cleaned prefixes ps.
func underAny(key string, ps []string) bool {
	for _, p := range ps {
		if backends.UnderPrefix(key, p) {
			return true
		}
	}
	return false
}

// relativeSorted is relative for a snapshot sorted by key (keys, and values in a parallel
// slice, as a sortedGetter returns them): it gives the render sorted keys and no map. When
// nothing changes (the common case, as for relative) it passes keys and values on as they
// are. When making keys relative would change their order or merge two of them (keys that
// are not clean), it falls back to relative's map.
func (r *Resource) relativeSorted(keys, values []string) template.Data {
	prefix := cleanPrefix(r.Prefix)
	ps := r.Prefixes()
	rel := func(k string) string {
		if prefix != "/" && backends.UnderPrefix(k, prefix) {
			k = k[len(prefix):]
		}
		if k == "" || k[0] != '/' {
			k = "/" + k
		}
		return path.Clean(k)
	}
	same := true
	for _, k := range keys {
		if !underAny(k, ps) || rel(k) != k {
			same = false
			break
		}
	}
	if same {
		return template.Data{Keys: keys, Values: values}
	}
	rks, rvs := make([]string, 0, len(keys)), make([]string, 0, len(keys))
	for i, k := range keys {
		if !underAny(k, ps) {
			continue
		}
		rk := rel(k)
		if n := len(rks); n > 0 && rks[n-1] >= rk {
			kv := make(map[string]string, len(keys))
			for i, k := range keys {
				kv[k] = values[i]
			}
			return template.Data{KV: r.relative(kv)}
		}
		rks, rvs = append(rks, rk), append(rvs, values[i])
	}
	return template.Data{Keys: rks, Values: rvs}
}

// sortedGetter is a backend that can return its snapshot sorted by key, values in a parallel
// slice, without building a map (etcd). An error wrapping errors.ErrUnsupported means that it
// cannot after all (a wrapper around a backend that cannot): the caller uses Get instead.
type sortedGetter interface {
	GetSorted(ctx context.Context, prefixes []string) (keys, values []string, err error)
}

func (r *Resource) apply(ctx context.Context, kv map[string]string, o SyncOptions) (Result, error) {
	return r.applyData(ctx, template.Data{KV: r.relative(kv)}, o)
}

// applyData is apply with the render's snapshot made already (keys relative to the prefix).
func (r *Resource) applyData(ctx context.Context, d template.Data, o SyncOptions) (Result, error) {
	var res Result
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("resource", r.Name, "dest", r.Dest)
	fail := func(step string, err error) (Result, error) {
		if step == "" {
			return res, fmt.Errorf("resource %s: %w", r.Name, err)
		}
		return res, fmt.Errorf("resource %s: %s: %w", r.Name, step, err)
	}
	if r.Tmpl == nil {
		return fail("", fmt.Errorf("%w: template not parsed", ErrRender))
	}
	if err := ctx.Err(); err != nil {
		return fail("render", err)
	}

	start := time.Now()
	d.Services = o.Services
	content, err := r.Tmpl.Render(ctx, d)
	res.RenderTime = time.Since(start)
	if err != nil {
		res, err = fail("", fmt.Errorf("%w: %w", ErrRender, err))
	} else {
		res, _, err = r.write(ctx, content, o, log, res)
	}
	if err != nil && o.Secrets {
		err = newScrubber(d).scrub(err)
	}
	return res, err
}

// write runs the pipeline on rendered content: compare → stage → check → rename → reload (→
// roll back), on top of res (the render's part of the result). It also returns how to put
// back what it replaced (nil when nothing was written, or when a failed reload put it back).
func (r *Resource) write(ctx context.Context, content []byte, o SyncOptions, log *slog.Logger, res Result) (Result, func() error, error) {
	var undo func() error
	fail := func(step string, err error) (Result, func() error, error) {
		if step == "" {
			return res, undo, fmt.Errorf("resource %s: %w", r.Name, err)
		}
		return res, undo, fmt.Errorf("resource %s: %s: %w", r.Name, step, err)
	}
	// Through a symlink, the file we manage is the link's target: compare with it, stage
	// beside it and rename onto it, so the link stays. The lock is the target's, so that a
	// link and the file it names are one destination.
	target, err := resolveDest(r.Dest)
	if err != nil {
		return fail("", err)
	}
	unlock := lockDest(target)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return fail("", err)
	}
	cur, err := readCurrent(target)
	if err != nil {
		return fail("read dest", err)
	}
	want := r.desired(cur, o.Secrets)
	if o.Secrets && !r.ModeSet {
		r.logSecretMode(log)
	}
	if cur.exists && bytes.Equal(cur.data, content) && cur.fileState == want {
		log.Debug("target config in sync")
		return res, undo, nil
	}
	res.Changed = true

	if o.Noop {
		res.Diff = noopDiff(r.Dest, cur, content, want, o.Secrets)
		out := o.Out
		if out == nil {
			out = os.Stdout
		}
		if _, err := io.WriteString(out, res.Diff); err != nil {
			return fail("noop diff", err)
		}
		log.Warn("noop: target config out of sync; not modified")
		return res, undo, nil
	}
	log.Info("target config out of sync")

	keepOwner := r.UID < 0 && r.GID < 0 // no owner asked for: keep the existing one if we may
	stage, release, err := writeStage(target, content, want, keepOwner)
	if err != nil {
		return fail("stage", err)
	}
	defer func() {
		if o.KeepStageFile {
			log.Info("keeping stage file", "stage", stage)
		} else {
			_ = os.Remove(stage)
		}
		release()
	}()

	if !o.SyncOnly && r.CheckCmd != "" {
		if err := r.runStep(ctx, log, "check_cmd", r.CheckCmd, stage, r.CheckTimeout, ErrCheck); err != nil {
			return fail("", err)
		}
		res.Checked = true
	}

	inPlace, err := commit(stage, target, content, want, keepOwner, r.inPlace(target, log), log)
	if err != nil {
		return fail("write dest", err)
	}
	res.Written, res.InPlace = true, inPlace
	undo = func() error { return restore(target, cur, inPlace) }
	if o.KeepStageFile && !inPlace {
		// The rename consumed the stage file; give its name back as a link to what was written.
		if err := os.Link(target, stage); err != nil {
			log.Warn("cannot keep stage file", "stage", stage, "err", err)
		}
	}

	if !o.SyncOnly && r.ReloadCmd != "" {
		rerr := r.runStep(ctx, log, "reload_cmd", r.ReloadCmd, r.Dest, r.ReloadTimeout, ErrReload)
		if rerr != nil {
			if err := restore(target, cur, inPlace); err != nil {
				log.Error("reload failed and the previous file could not be put back", "err", err)
				return fail("", errors.Join(rerr, fmt.Errorf("%w: %w", ErrRollback, err)))
			}
			res.RolledBack = true
			undo = nil
			log.Warn("reload failed; previous file put back")
			return fail("", rerr)
		}
		res.Reloaded = true
	}
	log.Info("target config updated")
	return res, undo, nil
}

// runStep expands and runs check_cmd or reload_cmd; src is what {{.src}} names.
func (r *Resource) runStep(ctx context.Context, log *slog.Logger, step, tmpl, src string, timeout time.Duration, sentinel error) error {
	cmd, err := expandCommand(tmpl, src, r.Dest)
	if err != nil {
		return fmt.Errorf("%w: template: %w", sentinel, err)
	}
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
		if sentinel == ErrReload {
			timeout = DefaultReloadTimeout
		}
	}
	log.Debug("running "+step, "cmd", cmd)
	out, err := runCommand(ctx, cmd, timeout)
	if err != nil {
		return commandError(sentinel, err, out)
	}
	log.Debug(step+" passed", "cmd", cmd)
	return nil
}

// commit moves the stage file over dest (the file, not a link to it) and makes it durable. With
// inPlace (a container bind-mounts dest, or the resource asks for it), and for a dest that
// cannot be renamed over (EBUSY: a mount point; EXDEV), it rewrites dest's own inode instead
// (the stage file then stays for the caller to remove); it reports which it did.
func commit(stage, dest string, content []byte, st fileState, keepOwner, inPlace bool, log *slog.Logger) (bool, error) {
	if inPlace {
		return true, writeInPlace(dest, content, st, keepOwner)
	}
	err := renameFile(stage, dest)
	if err == nil {
		if err := syncDir(filepath.Dir(dest)); err != nil {
			log.Warn("cannot sync the destination's folder", "err", err)
		}
		return false, nil
	}
	if !renameBlocked(err) {
		return false, err
	}
	log.Info("rename over the destination failed (a mount?); writing it in place", "err", err)
	return true, writeInPlace(dest, content, st, keepOwner)
}

// restore puts back the file dest as it was before (or removes it if there was none). The
// previous owner comes back when we may set it.
func restore(dest string, prev current, inPlace bool) error {
	if !prev.exists {
		if err := os.Remove(dest); err != nil {
			return err
		}
		return syncDir(filepath.Dir(dest))
	}
	if inPlace {
		return writeInPlace(dest, prev.data, prev.fileState, true)
	}
	stage, release, err := writeStage(dest, prev.data, prev.fileState, true)
	if err != nil {
		return err
	}
	defer release()
	if err := renameFile(stage, dest); err != nil {
		_ = os.Remove(stage)
		if !renameBlocked(err) {
			return err
		}
		return writeInPlace(dest, prev.data, prev.fileState, true)
	}
	return syncDir(filepath.Dir(dest))
}

// noopDiff is the -noop report: mode and owner changes, then a unified diff of the contents
// (with secrets, only which lines change: see redactedDiff).
func noopDiff(dest string, cur current, content []byte, want fileState, secrets bool) string {
	var sb strings.Builder
	if !cur.exists {
		fmt.Fprintf(&sb, "new file %s mode %#o owner %d:%d\n", dest, unixMode(want.mode), want.uid, want.gid)
	} else {
		if cur.mode != want.mode {
			fmt.Fprintf(&sb, "old mode %#o\nnew mode %#o\n", unixMode(cur.mode), unixMode(want.mode))
		}
		if cur.uid != want.uid || cur.gid != want.gid {
			fmt.Fprintf(&sb, "old owner %d:%d\nnew owner %d:%d\n", cur.uid, cur.gid, want.uid, want.gid)
		}
	}
	if secrets {
		sb.WriteString(redactedDiff(dest, dest+" (rendered)", cur.data, content))
	} else {
		sb.WriteString(unifiedDiff(dest, dest+" (rendered)", cur.data, content))
	}
	return sb.String()
}
