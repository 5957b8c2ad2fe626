package resource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/template"
)

// CONTRACT (kept by the implementation; other packages code against it).

// Resource is one `[template]` table of a conf.d/*.toml file, loaded and its template parsed.
type Resource struct {
	Name          string // the TOML file's path relative to conf.d (e.g. "haproxy.toml")
	File          string // the TOML file's full path
	Src           string // template path relative to templates/
	Dest          string
	Keys          []string // as written
	Prefix        string   // effective prefix (the global -prefix replaces the resource's)
	Mode          os.FileMode
	ModeSet       bool
	UID, GID      int // -1: unset
	CheckCmd      string
	ReloadCmd     string
	Wait          Wait
	CheckTimeout  time.Duration
	ReloadTimeout time.Duration
	Tmpl          *template.Template
	// Dynamic, when set, renders the resource instead of Tmpl (see Dynamic).
	Dynamic Dynamic

	// Owner and Group are the names as written (already resolved into UID and GID unless
	// uid or gid was also set, which wins).
	Owner, Group string
	// LeftDelim, RightDelim and MissingKey are the template options as written.
	LeftDelim, RightDelim string
	MissingKey            string // "", "default" or "error"
	// WriteMode is how the destination is replaced ("" means WriteAuto).
	WriteMode WriteMode
	// Backend names the store the resource reads (`backend = "secrets"`: a [backends.NAME]
	// table of reconf.toml); "" is the global backend.
	Backend string
}

// Command timeouts used when neither the resource nor Defaults set one.
const (
	DefaultCheckTimeout  = 30 * time.Second
	DefaultReloadTimeout = 60 * time.Second
)

// Wait is a debounce window: each change snoozes the render by Min, never past first change +
// Max. The zero Wait means render at once.
type Wait struct{ Min, Max time.Duration }

// ParseWait parses "min:max" or "min" (max = 4×min, as consul-template does), e.g. "50ms:500ms",
// "2s". Bare integers are seconds. The empty string is the zero Wait.
func ParseWait(s string) (Wait, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Wait{}, nil
	}
	minStr, maxStr, hasMax := strings.Cut(s, ":")
	minD, err := parseDuration(minStr)
	if err != nil {
		return Wait{}, fmt.Errorf("%w: wait %q: min: %w", ErrInvalid, s, err)
	}
	w := Wait{Min: minD, Max: 4 * minD}
	if hasMax {
		if w.Max, err = parseDuration(maxStr); err != nil {
			return Wait{}, fmt.Errorf("%w: wait %q: max: %w", ErrInvalid, s, err)
		}
		if w.Max < w.Min {
			return Wait{}, fmt.Errorf("%w: wait %q: max is less than min", ErrInvalid, s)
		}
	}
	return w, nil
}

// parseDuration reads a Go duration ("1m30s") or a bare integer of seconds; negative values
// are refused.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64(time.Duration(1<<62)/time.Second) {
			return 0, fmt.Errorf("duration %q too large", s)
		}
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. \"500ms\", \"2s\" or seconds)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// Defaults are the run-wide settings a resource inherits.
type Defaults struct {
	ConfDir       string // holds conf.d/ and templates/
	Prefix        string // global -prefix: when non-empty it replaces each resource's prefix
	Wait          Wait   // global -wait; a resource's own wait wins
	CheckTimeout  time.Duration
	ReloadTimeout time.Duration
	Log           *slog.Logger
	// Backends are the names of the backends besides the default one that a resource may
	// name with `backend = "NAME"` (reconf.toml's [backends.NAME] tables; "default" is
	// always known). Any other name fails the resource's file.
	Backends []string
}

// Load reads every conf.d/**/*.toml under d.ConfDir, sorted by path, and parses each template.
// It returns the resources that loaded and an error (errors.Join of one per bad file, each
// naming the file and line) for the others. A missing conf.d is logged as a warning and gives
// no resources, as confd does.
func Load(d Defaults) ([]*Resource, error) { return load(d) }

// Prefixes returns the backend prefixes the resource reads: path.Join(Prefix, key) per key,
// cleaned with backends.CleanPrefix, sorted, and without those covered by another one.
func (r *Resource) Prefixes() []string {
	if r.Dynamic != nil {
		return r.Dynamic.Prefixes()
	}
	if len(r.Keys) == 0 {
		return nil
	}
	ps := make([]string, 0, len(r.Keys))
	for _, k := range r.Keys {
		ps = append(ps, joinKey(r.Prefix, k))
	}
	return backends.Dedupe(ps)
}

// SyncOptions change how Sync touches the world.
type SyncOptions struct {
	Noop          bool      // change nothing; write a unified diff to Out
	SyncOnly      bool      // write files but run neither check_cmd nor reload_cmd
	KeepStageFile bool      // leave the stage file behind
	Out           io.Writer // where -noop diffs go (default os.Stdout)
	Log           *slog.Logger
	Services      template.Services
	// Secrets says that the data holds secrets (Sync sets it when the backend is a
	// backends.SecretHolder that holds them): without a mode of its own the destination is
	// written SecretMode, the -noop diff shows which lines change but not their contents, and
	// values are scrubbed from errors.
	Secrets bool
}

// Result is the outcome of one Sync, for logs, metrics and tests.
type Result struct {
	Changed    bool // the rendered file (bytes, mode or owner) differs from the destination
	Written    bool // the destination was replaced
	Checked    bool // check_cmd ran and passed
	Reloaded   bool // reload_cmd ran and passed
	RolledBack bool // reload_cmd failed and the previous file was put back
	InPlace    bool // the destination was written in place: a bind mount, write = "inplace", or EBUSY/EXDEV on rename
	Diff       string
	RenderTime time.Duration
}

// Sync reads the resource's prefixes from b and then Apply's the snapshot. A backend error is
// returned (wrapped, naming the resource) and nothing is touched: stale beats partial.
func (r *Resource) Sync(ctx context.Context, b backends.Backend, o SyncOptions) (Result, error) {
	if HoldsSecrets(b) {
		o.Secrets = true
	}
	if r.Dynamic != nil {
		return r.Dynamic.Sync(ctx, b, o)
	}
	kv := map[string]string{}
	if ps := r.Prefixes(); len(ps) > 0 {
		if sg, ok := b.(sortedGetter); ok {
			keys, values, err := sg.GetSorted(ctx, ps)
			switch {
			case err == nil:
				return r.applyData(ctx, r.relativeSorted(keys, values), o)
			case !errors.Is(err, errors.ErrUnsupported):
				return Result{}, fmt.Errorf("resource %s: get %v: %w", r.Name, ps, err)
			}
		}
		var err error
		if kv, err = b.Get(ctx, ps); err != nil {
			return Result{}, fmt.Errorf("resource %s: get %v: %w", r.Name, ps, err)
		}
	}
	return r.Apply(ctx, kv, o)
}

// Apply renders kv (absolute backend keys; keys outside the resource's prefixes are ignored)
// and runs the pipeline: compare → stage → check → rename → reload (→ roll back). Errors name
// the resource and the step. Applies to the same destination are serialized. Cancelling ctx
// stops the render and kills a running command's process group (a failed step, as a timeout).
func (r *Resource) Apply(ctx context.Context, kv map[string]string, o SyncOptions) (Result, error) {
	return r.apply(ctx, kv, o)
}
