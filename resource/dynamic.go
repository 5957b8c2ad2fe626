package resource

import (
	"context"
	"log/slog"

	"github.com/reconf/reconf/backends"
)

// Dynamic renders a resource whose dependencies are not declared but found by rendering:
// consul-template's dialect, whose templates read whatever keys, folders and services they
// name. A Resource with Dynamic set hands Sync to it; Prefixes and UsesServices answer what
// its last render read, and change as the templates ask for other data.
type Dynamic interface {
	Sync(ctx context.Context, b backends.Backend, o SyncOptions) (Result, error)
	// Prefixes are the store prefixes the last render read (cleaned, deduplicated).
	Prefixes() []string
	// UsesServices reports whether the last render read services or the catalog.
	UsesServices() bool
}

// UsesServices reports whether the resource's template calls `service` or `services` (for a
// Dynamic resource: whether its last render read services).
func (r *Resource) UsesServices() bool {
	if r.Dynamic != nil {
		return r.Dynamic.UsesServices()
	}
	return r.Tmpl != nil && r.Tmpl.UsesServices()
}

// Write runs the pipeline on content that a Dynamic resource rendered: compare → stage →
// check_cmd → rename → reload_cmd (→ roll back). It returns how to put back the file it
// replaced (nil when it wrote nothing), so that a caller whose later step fails can undo it.
func (r *Resource) Write(ctx context.Context, content []byte, o SyncOptions) (Result, func() error, error) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	res, undo, err := r.write(ctx, content, o, log.With("resource", r.Name, "dest", r.Dest), Result{})
	if err != nil && o.Secrets {
		err = scrubberOf([]string{string(content)}).scrub(err)
	}
	return res, undo, err
}
