package resource

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
// the existing file, else 0644 and the effective ids.
func (r *Resource) desired(cur current) fileState {
	s := fileState{mode: 0o644, uid: os.Geteuid(), gid: os.Getegid()}
	if cur.exists {
		s = cur.fileState
	}
	if r.ModeSet {
		s.mode = r.Mode & modeMask
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
// to disk, and returns its path. On error nothing is left behind. With keepOwner, st's owner is
// the existing file's, kept when we may: a refused chown (we are not root) is not an error.
func writeStage(dest string, data []byte, st fileState, keepOwner bool) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest))
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = writeFile(f, data, st, keepOwner)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
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
