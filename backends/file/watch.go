package file

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconf/reconf/backends"
)

// Watch signals changed when the keys under prefixes differ from what they were: it watches
// the folders that hold the files with fsnotify (so editors that save by renaming a new file
// over the old one are seen), re-reads on every event, and re-reads every Resync anyway. A
// write that leaves the keys under prefixes as they were (another prefix's keys, a comment)
// does not signal. While the files cannot be read or parsed nothing is signalled; the first
// good read after that signals. Watch returns ctx.Err() when ctx is done, or an error if
// fsnotify cannot be started at all.
func (c *Client) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	prefixes = backends.Dedupe(prefixes)
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("file backend: watch %v: %w", c.cfg.Files, err)
	}
	defer fw.Close()
	log := slog.Default().With("backend", Name)
	watched := map[string]bool{}
	c.addDirs(fw, watched, log)

	last, lastErr := c.snapshot(prefixes)
	recheck := func() {
		cur, err := c.snapshot(prefixes)
		switch {
		case err != nil:
			if lastErr == nil {
				log.Warn("cannot read the files; keeping the last data", "err", err)
			}
			lastErr = err
			return
		case lastErr != nil || !maps.Equal(cur, last):
			backends.Notify(changed)
		}
		last, lastErr = cur, nil
	}

	resync := time.NewTicker(c.cfg.Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-fw.Events:
			if !ok {
				return fmt.Errorf("file backend: fsnotify stopped")
			}
			newDir, err := settle(ctx, fw, ev)
			if err != nil {
				return err
			}
			if newDir {
				c.addDirs(fw, watched, log) // a folder created under a watched one
			}
			recheck()
		case err, ok := <-fw.Errors:
			if !ok {
				return fmt.Errorf("file backend: fsnotify stopped")
			}
			log.Warn("fsnotify error; re-reading", "err", err) // e.g. a queue overflow
			recheck()
		case <-resync.C:
			c.addDirs(fw, watched, log) // folders deleted and made again, or made late
			recheck()
		}
	}
}

// Torn-write guard: after an event, events are taken until none came for settleQuiet (at
// most settleMax), and only then are the files read. A file written in place is empty or
// half-written between the truncate and the last write; reading it then would see keys vanish.
// This is not a debounce of changes (the runner does that): it only waits out one save.
const (
	settleQuiet = 50 * time.Millisecond
	settleMax   = time.Second
)

// settle takes the rest of the burst that ev started and reports whether it created anything
// (a new folder may need watching).
func settle(ctx context.Context, fw *fsnotify.Watcher, ev fsnotify.Event) (created bool, err error) {
	created = ev.Has(fsnotify.Create)
	quiet := time.NewTimer(settleQuiet)
	defer quiet.Stop()
	limit := time.NewTimer(settleMax)
	defer limit.Stop()
	for {
		select {
		case <-ctx.Done():
			return created, ctx.Err()
		case ev, ok := <-fw.Events:
			if !ok {
				return created, fmt.Errorf("file backend: fsnotify stopped")
			}
			created = created || ev.Has(fsnotify.Create)
			quiet.Reset(settleQuiet)
		case <-quiet.C:
			return created, nil
		case <-limit.C:
			return created, nil
		}
	}
}

// snapshot reads the keys under prefixes.
func (c *Client) snapshot(prefixes []string) (map[string]string, error) {
	all, err := c.readAll()
	if err != nil {
		return nil, err
	}
	return backends.Filter(all, prefixes), nil
}

// addDirs watches every folder the files live in: each named folder and its sub-folders, the
// folder of each named file, and the folder of its target when it is a symbolic link.
// Folders that do not exist yet are tried again on the next resync.
func (c *Client) addDirs(fw *fsnotify.Watcher, watched map[string]bool, log *slog.Logger) {
	add := func(dir string) {
		if err := fw.Add(dir); err != nil {
			if watched[dir] || !os.IsNotExist(err) {
				log.Debug("cannot watch folder", "folder", dir, "err", err)
			}
			delete(watched, dir)
			return
		}
		watched[dir] = true
	}
	for _, root := range c.cfg.Files {
		st, err := os.Stat(root)
		if err != nil || !st.IsDir() {
			add(filepath.Dir(root))
			if real, err := filepath.EvalSymlinks(root); err == nil && real != root {
				add(filepath.Dir(real))
			}
			continue
		}
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				add(p)
			}
			return nil
		})
	}
}
