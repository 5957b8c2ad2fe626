package template

import (
	"context"

	"github.com/reconf/reconf/backends"
)

// CONTRACT (kept by the implementation; other packages code against it).

// Config says what to parse.
type Config struct {
	Resource        string // resource name, for errors
	Dir             string // the templates/ folder: src and include paths are relative to it
	Src             string // the template file, relative to Dir (or absolute)
	LeftDelim       string // "" means "{{"
	RightDelim      string // "" means "}}"
	MissingKeyError bool   // missingkey=error: a missing map field fails instead of "<no value>"
}

// Services answers the template functions `service` and `services`. Nil means that the
// functions return an error naming backends.ErrNoDiscovery.
type Services interface {
	Service(ctx context.Context, name, tag, dc string) ([]backends.Service, error)
	ServiceNames(ctx context.Context) (map[string][]string, error)
}

// Data is what one render sees.
type Data struct {
	// KV is the snapshot, keys relative to the resource's prefix with a leading '/'.
	KV       map[string]string
	Services Services
}

// Template is a parsed template; Render is safe for concurrent use.
type Template struct {
	cfg Config
	// implementation fields
}

// Parse reads and parses cfg.Src and every file it includes (`include "x.tmpl"`, cycles are
// an error). Errors name the resource, the file and the line.
func Parse(cfg Config) (*Template, error) { panic("not implemented") }

// Render executes the template against d into memory. Errors name the resource, template file,
// line and, for a missing key, the key.
func (t *Template) Render(ctx context.Context, d Data) ([]byte, error) { panic("not implemented") }
