package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/reconf/reconf/backends"
)

// Name is the name the backend registers under.
const Name = "file"

// DefaultFilter matches every file name.
const DefaultFilter = "*"

// DefaultResync is how often a watch re-reads the files even without an fsnotify event: a
// safety net for events that never come (network file systems, a folder created later).
const DefaultResync = time.Minute

func init() {
	backends.Register(Name, func(o backends.Options) (backends.Backend, error) {
		return New(FromOptions(o))
	})
}

// Config is what the file backend reads from backends.Options.
type Config struct {
	// Files are YAML or JSON files, or folders walked recursively (-file, repeatable).
	Files []string
	// Filter is a filepath.Match glob on base names that selects the files read from folders
	// (-filter; default "*"). Files named directly are always read.
	Filter string
	// Resync is the period of the safety re-read while watching (default DefaultResync).
	Resync time.Duration
}

// FromOptions builds a Config from the user's options, with defaults filled in.
func FromOptions(o backends.Options) Config {
	c := Config{Files: o.Files, Filter: o.Filter}
	if c.Filter == "" {
		c.Filter = DefaultFilter
	}
	return c
}

// Validate reports options the backend cannot work with.
func (c Config) Validate() error {
	if len(c.Files) == 0 {
		return fmt.Errorf("no file given (-file): %w", backends.ErrConfig)
	}
	for _, f := range c.Files {
		if f == "" {
			return fmt.Errorf("an empty file name in -file: %w", backends.ErrConfig)
		}
	}
	if _, err := filepath.Match(c.Filter, ""); err != nil {
		return fmt.Errorf("filter %q: %w: %w", c.Filter, backends.ErrConfig, err)
	}
	if c.Resync < 0 {
		return fmt.Errorf("resync %v is negative: %w", c.Resync, backends.ErrConfig)
	}
	return nil
}

// Client reads the files afresh on every Get; it holds no state and is safe for concurrent
// use.
type Client struct {
	cfg Config
}

var (
	_ backends.Backend = (*Client)(nil)
	_ backends.Watcher = (*Client)(nil)
)

// New validates cfg and returns a client. The files need not exist yet: Get fails until they
// do.
func New(cfg Config) (*Client, error) {
	if cfg.Filter == "" {
		cfg.Filter = DefaultFilter
	}
	if cfg.Resync == 0 {
		cfg.Resync = DefaultResync
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg}, nil
}

// Get reads every file and returns the keys at or under prefixes. A file that cannot be read
// or parsed fails the whole Get (stale beats partial); a file that cannot be read wraps
// backends.ErrUnavailable, one that cannot be parsed wraps ErrParse.
func (c *Client) Get(ctx context.Context, prefixes []string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all, err := c.readAll()
	if err != nil {
		return nil, err
	}
	return backends.Filter(all, backends.Dedupe(prefixes)), nil
}

// Close does nothing: the client holds no resources between calls.
func (c *Client) Close() error { return nil }

// readAll reads every file, later files overriding earlier ones key by key.
func (c *Client) readAll() (map[string]string, error) {
	names, err := c.files()
	if err != nil {
		return nil, err
	}
	vars := make(map[string]string)
	for _, name := range names {
		if err := readFile(name, vars); err != nil {
			if pe := new(fs.PathError); errors.As(err, &pe) {
				return nil, fmt.Errorf("file %s: %w: %w", name, backends.ErrUnavailable, unnamed(name, err))
			}
			return nil, err
		}
	}
	return vars, nil
}

// files lists what to read as confd does: a named file as is (whatever its name), a folder
// walked in lexical order keeping the files (symbolic links to files included) whose base
// name matches the filter.
func (c *Client) files() ([]string, error) {
	var out []string
	for _, root := range c.cfg.Files {
		real, err := filepath.EvalSymlinks(root)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w: %w", root, backends.ErrUnavailable, unnamed(root, err))
		}
		st, err := os.Stat(real)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w: %w", root, backends.ErrUnavailable, unnamed(real, err))
		}
		if !st.IsDir() {
			out = append(out, real)
			continue
		}
		err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if ok, _ := filepath.Match(c.cfg.Filter, d.Name()); !ok {
				return nil
			}
			switch {
			case d.Type().IsRegular():
			case d.Type()&fs.ModeSymlink != 0:
				st, err := os.Stat(p)
				if err != nil || !st.Mode().IsRegular() {
					return nil // a dangling link or a link to a folder: not a file to read
				}
			default:
				return nil // a socket, a pipe, a device
			}
			out = append(out, p)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("folder %s: %w: %w", root, backends.ErrUnavailable, unnamed(real, err))
		}
	}
	return out, nil
}

// unnamed drops the path from err when it is a *fs.PathError about name, which the caller's
// message names already ("file a.yaml: backend unavailable: open: no such file or
// directory"). errors.Is and errors.As still see the *fs.PathError.
func unnamed(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == name && pe.Err != nil {
		return &wrapped{msg: pe.Op + ": " + pe.Err.Error(), err: err}
	}
	return err
}

// wrapped is err told as msg.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }
