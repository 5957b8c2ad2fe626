package resource

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/template"
)

// CONTRACT (kept by the implementation; other packages code against it).

// Resource is one `[template]` table of a conf.d/*.toml file, loaded and its template parsed.
type Resource struct {
	Name          string   // the TOML file's path relative to conf.d (e.g. "haproxy.toml")
	File          string   // the TOML file's full path
	Src           string   // template path relative to templates/
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
}

// Wait is a debounce window: each change snoozes the render by Min, never past first change +
// Max. The zero Wait means render at once.
type Wait struct{ Min, Max time.Duration }

// ParseWait parses "min:max" or "min" (max = 4×min, as consul-template does), e.g. "50ms:500ms",
// "2s". Bare integers are seconds.
func ParseWait(s string) (Wait, error) { panic("not implemented") }

// Defaults are the run-wide settings a resource inherits.
type Defaults struct {
	ConfDir       string // holds conf.d/ and templates/
	Prefix        string // global -prefix: when non-empty it replaces each resource's prefix
	Wait          Wait   // global -wait; a resource's own wait wins
	CheckTimeout  time.Duration
	ReloadTimeout time.Duration
	Log           *slog.Logger
}

// Load reads every conf.d/**/*.toml under d.ConfDir, sorted by path, and parses each template.
// It returns the resources that loaded and an error (errors.Join of one per bad file, each
// naming the file and line) for the others.
func Load(d Defaults) ([]*Resource, error) { panic("not implemented") }

// Prefixes returns the backend prefixes the resource reads: path.Join(Prefix, key) per key,
// cleaned with backends.CleanPrefix.
func (r *Resource) Prefixes() []string { panic("not implemented") }

// SyncOptions change how Sync touches the world.
type SyncOptions struct {
	Noop          bool      // change nothing; write a unified diff to Out
	SyncOnly      bool      // write files but run neither check_cmd nor reload_cmd
	KeepStageFile bool      // leave the stage file behind
	Out           io.Writer // where -noop diffs go (default os.Stdout)
	Log           *slog.Logger
	Services      template.Services
}

// Result is the outcome of one Sync, for logs, metrics and tests.
type Result struct {
	Changed    bool // the rendered file (bytes, mode or owner) differs from the destination
	Written    bool // the destination was replaced
	Checked    bool // check_cmd ran and passed
	Reloaded   bool // reload_cmd ran and passed
	RolledBack bool // reload_cmd failed and the previous file was put back
	InPlace    bool // rename failed with EBUSY/EXDEV and the file was written in place
	Diff       string
	RenderTime time.Duration
}

// Sync reads the resource's prefixes from b and then Apply's the snapshot.
func (r *Resource) Sync(ctx context.Context, b backends.Backend, o SyncOptions) (Result, error) {
	panic("not implemented")
}

// Apply renders kv (absolute backend keys) and runs the pipeline: compare → stage → check →
// rename → reload (→ roll back). Errors name the resource and the step.
func (r *Resource) Apply(ctx context.Context, kv map[string]string, o SyncOptions) (Result, error) {
	panic("not implemented")
}
