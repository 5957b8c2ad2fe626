package resource

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// WriteMode says how a resource replaces its destination: `write = "auto"` (the default),
// "rename" or "inplace" in the TOML resource.
type WriteMode string

const (
	// WriteAuto renames the stage file over the destination, unless a running container
	// bind-mounts the destination file itself (see SetMountFinder): then it writes in place.
	WriteAuto WriteMode = "auto"
	// WriteRename always renames (atomic: a reader sees the old file or the new one).
	WriteRename WriteMode = "rename"
	// WriteInPlace always rewrites the destination's own inode, after check_cmd has passed on
	// the stage file: what a file bind-mounted into a container needs, since the container
	// keeps seeing the inode it was started with.
	WriteInPlace WriteMode = "inplace"
)

// writeValue is `write = "auto" | "rename" | "inplace"`.
type writeValue WriteMode

func (w *writeValue) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	switch WriteMode(s) {
	case WriteAuto, WriteRename, WriteInPlace, "":
		if ok {
			*w = writeValue(s)
			return nil
		}
	}
	return fmt.Errorf("write must be \"auto\", \"rename\" or \"inplace\", not %v", v)
}

// MountFinder tells whether a running container bind-mounts the file at path itself (not a
// folder above it: a folder mount sees a rename). path is absolute and has no symbolic links.
// It must answer quickly (from a cache) and say no when it cannot tell.
type MountFinder interface {
	BindMounted(path string) (container string, ok bool)
}

var mountFinder atomic.Pointer[MountFinder]

// SetMountFinder installs the finder that WriteAuto resources ask (nil: none; every WriteAuto
// destination is renamed over). cmd/reconf installs internal/dockermounts when the Docker engine
// can be reached.
func SetMountFinder(f MountFinder) {
	if f == nil {
		mountFinder.Store(nil)
		return
	}
	mountFinder.Store(&f)
}

// inPlaceLogged remembers which (resource, destination, reason) was logged, so the log says
// once per resource why its destination is written in place.
var inPlaceLogged sync.Map

// inPlace decides whether target (the file the destination names) is written in place, and
// logs why the first time.
func (r *Resource) inPlace(target string, log *slog.Logger) bool {
	var why []any
	switch r.WriteMode {
	case WriteRename:
		return false
	case WriteInPlace:
		why = []any{"reason", `write = "inplace"`}
	default:
		p := mountFinder.Load()
		if p == nil {
			return false
		}
		abs, err := filepath.Abs(target)
		if err != nil {
			return false
		}
		if realPath, err := filepath.EvalSymlinks(abs); err == nil {
			abs = realPath
		} else if !os.IsNotExist(err) {
			return false
		}
		c, ok := (*p).BindMounted(abs)
		if !ok {
			return false
		}
		why = []any{"reason", "a running container bind-mounts this file", "container", c}
	}
	key := fmt.Sprint(r.Name, "\x00", target, "\x00", why)
	if _, seen := inPlaceLogged.LoadOrStore(key, true); !seen {
		log.Info("writing the destination in place (same inode) after check_cmd passed on the stage file", why...)
	}
	return true
}
