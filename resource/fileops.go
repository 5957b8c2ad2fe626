package resource

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// renameFile is os.Rename; tests replace it to see what a bind-mounted destination does.
var renameFile = os.Rename

// modeMask is the part of a file's mode that a resource sets and compares.
const modeMask = os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky

// fileState is what a resource sets on its destination besides the bytes.
type fileState struct {
	mode     os.FileMode
	uid, gid int
}

// unixMode turns an os.FileMode into the octal number chmod(1) shows.
func unixMode(m os.FileMode) uint32 {
	n := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		n |= 0o1000
	}
	return n
}

// current is the destination as it is now.
type current struct {
	exists bool
	data   []byte
	fileState
}

func readCurrent(dest string) (current, error) {
	fi, err := os.Stat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return current{}, nil
	}
	if err != nil {
		return current{}, err
	}
	if !fi.Mode().IsRegular() {
		return current{}, fmt.Errorf("%s is not a regular file", dest)
	}
	data, err := os.ReadFile(dest)
	if err != nil {
		return current{}, err
	}
	c := current{exists: true, data: data, fileState: fileState{mode: fi.Mode() & modeMask, uid: -1, gid: -1}}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		c.uid, c.gid = int(st.Uid), int(st.Gid)
	}
	return c, nil
}

// desired is the mode and owner the destination must have: the resource's own, else those of
// the existing file, else 0644 and the effective ids. With secrets, an unset mode is
// SecretMode, whatever the existing file's.
func (r *Resource) desired(cur current, secrets bool) fileState {
	s := fileState{mode: 0o644, uid: os.Geteuid(), gid: os.Getegid()}
	if cur.exists {
		s = cur.fileState
	}
	switch {
	case r.ModeSet:
		s.mode = r.Mode & modeMask
	case secrets:
		s.mode = SecretMode
	}
	if r.UID >= 0 {
		s.uid = r.UID
	}
	if r.GID >= 0 {
		s.gid = r.GID
	}
	return s
}

// writeStage writes data to a new ".<base><random>" file beside dest with st applied, synced
// to disk, and returns its path and a release func to call once the stage file is renamed or
// removed. On error nothing is left behind. With keepOwner, st's owner is the existing file's,
// kept when we may: a refused chown (we are not root) is not an error.
//
// Until release, the stage file is locked (flock): RemoveStale, at the next start, removes only
// stage files that nobody holds, i.e. those a reconf killed mid-write left behind.
func writeStage(dest string, data []byte, st fileState, keepOwner bool) (string, func(), error) {
	f, err := createStage(dest)
	if err != nil {
		return "", nil, err
	}
	name := f.Name()
	if err = writeFile(f, data, st, keepOwner); err != nil {
		_ = os.Remove(name)
		_ = f.Close()
		return "", nil, err
	}
	return name, func() { _ = f.Close() }, nil
}

// createStage creates and locks a new stage file for dest.
func createStage(dest string) (*os.File, error) {
	for range 10 {
		f, err := os.CreateTemp(filepath.Dir(dest), stagePrefix(dest))
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = os.Remove(f.Name())
			_ = f.Close()
			return nil, fmt.Errorf("lock stage file: %w", err)
		}
		// Between create and lock, another reconf's RemoveStale may have taken it for a
		// leftover: check that the name still holds this file.
		fi, err := f.Stat()
		if err == nil {
			if at, err := os.Lstat(f.Name()); err == nil && os.SameFile(fi, at) {
				return f, nil
			}
		}
		_ = f.Close()
	}
	return nil, fmt.Errorf("stage file for %s: removed as soon as created, again and again", dest)
}

// stagePrefix is the start of dest's stage file names: os.CreateTemp appends a random
// decimal number (confd's pattern, ".<base><random>").
func stagePrefix(dest string) string { return "." + filepath.Base(dest) }

// isStageName reports whether name (a base name) is one that writeStage makes for dest:
// the prefix and then the decimal form of a uint32, as os.CreateTemp makes it.
func isStageName(dest, name string) bool {
	digits, ok := strings.CutPrefix(name, stagePrefix(dest))
	if !ok || digits == "" || len(digits) > 10 || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return err == nil && n <= math.MaxUint32
}

// RemoveStale removes the stage files that a reconf killed mid-write left beside the
// destinations of rs (beside the file a symlinked destination points to): only files whose
// name is one writeStage makes for that destination, that no running reconf holds (see
// writeStage) and that are not the destination itself (-keep-stage-file keeps a stage file as
// a link to what was written). It logs each file it removes and returns their paths.
func RemoveStale(rs []*Resource, log *slog.Logger) []string {
	if log == nil {
		log = slog.Default()
	}
	var removed []string
	seen := map[string]bool{}
	for _, r := range rs {
		if r.Dest == "" {
			continue
		}
		dest, err := resolveDest(r.Dest)
		if err != nil {
			continue // the resource's sync says why
		}
		dest, err = filepath.Abs(dest)
		if err != nil || seen[dest] {
			continue
		}
		seen[dest] = true
		ents, err := os.ReadDir(filepath.Dir(dest))
		if err != nil {
			continue
		}
		destInfo, _ := os.Stat(dest)
		for _, e := range ents {
			if !e.Type().IsRegular() || !isStageName(dest, e.Name()) {
				continue
			}
			p := filepath.Join(filepath.Dir(dest), e.Name())
			ok, err := removeStage(p, destInfo)
			switch {
			case err != nil:
				log.Warn("cannot remove a stage file left by an earlier run", "resource", r.Name, "stage", p, "err", err)
			case ok:
				log.Info("removed a stage file left by an earlier run", "resource", r.Name, "stage", p)
				removed = append(removed, p)
			}
		}
	}
	return removed
}

// removeStage removes the stage file p unless a running reconf holds it or it is the
// destination itself (destInfo; nil if there is none).
func removeStage(p string, destInfo os.FileInfo) (bool, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || (destInfo != nil && os.SameFile(fi, destInfo)) {
		return false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil // in use
		}
		return false, err
	}
	if at, err := os.Lstat(p); err != nil || !os.SameFile(fi, at) {
		return false, nil // replaced meanwhile
	}
	if err := os.Remove(p); err != nil {
		return false, err
	}
	return true, nil
}

// writeFile sets owner and mode on f (chown first: it clears setuid bits), then writes data
// from the start, truncates to it and syncs.
func writeFile(f *os.File, data []byte, st fileState, keepOwner bool) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if sys, ok := fi.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != st.uid || int(sys.Gid) != st.gid {
		if err := f.Chown(st.uid, st.gid); err != nil && !(keepOwner && errors.Is(err, fs.ErrPermission)) {
			return err
		}
	}
	if err := f.Chmod(st.mode); err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return err
	}
	return f.Sync()
}

// writeInPlace rewrites dest's own inode (for a bind-mounted file that cannot be renamed over).
func writeInPlace(dest string, data []byte, st fileState, keepOwner bool) error {
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE, st.mode.Perm())
	if err != nil {
		return err
	}
	err = writeFile(f, data, st, keepOwner)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// renameBlocked reports whether a rename failed because dest is a mount point or lies on
// another file system, so that writing in place is the way left.
func renameBlocked(err error) bool {
	return errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV)
}

// syncDir makes a rename in dir durable. File systems that cannot sync folders are ignored.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

// destLocks serializes the pipeline per destination path, across resources and reloads.
var destLocks sync.Map // cleaned path → *sync.Mutex

func lockDest(dest string) func() {
	abs, err := filepath.Abs(dest)
	if err != nil {
		abs = filepath.Clean(dest)
	}
	m, _ := destLocks.LoadOrStore(abs, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// errDanglingLink: the destination is a symbolic link whose target does not exist.
var errDanglingLink = errors.New("dangling symlink")

// maxLinks bounds the symbolic links followed from a destination (as the kernel's ELOOP does).
const maxLinks = 40

// resolveDest returns the file that dest names: dest itself, or, when dest is a symbolic link
// (or a chain of them), the file at its end. A missing dest is returned as it is (it will be
// created); a link whose target does not exist is an error naming both.
func resolveDest(dest string) (string, error) {
	p := dest
	for range maxLinks {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if p == dest {
				return dest, nil
			}
			return "", fmt.Errorf("dest %s: %w to %s, which does not exist", dest, errDanglingLink, p)
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if p == dest {
				return dest, nil
			}
			// The file may sit under linked folders too: name it by its real path, so that
			// its stage file lands beside it.
			return filepath.EvalSymlinks(p)
		}
		to, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(to) {
			to = filepath.Join(filepath.Dir(p), to)
		}
		p = to
	}
	return "", fmt.Errorf("dest %s: more than %d symbolic links", dest, maxLinks)
}
