package ct

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"text/template/parse"

	cttemplate "github.com/hashicorp/consul-template/template"
)

// ErrWaiting says that a render is waiting for data that does not exist yet (a missing key,
// an empty safeLs or safeTree, a missing file): consul-template blocks on it, so there is no
// output to write. The caller watches Result.Deps and renders again when they change.
var ErrWaiting = errors.New("waiting for data")

// ErrStore wraps an error reading a store during a render: the render is abandoned (stale
// beats partial) and may be retried; it is not an error in the template.
var ErrStore = errors.New("store read failed")

// Config says what one consul-template template is: its `template {}` block.
type Config struct {
	Source      string // the template file; "" when Contents is given
	Contents    string // the template itself (HCL `contents`)
	Destination string
	LeftDelim   string // "" means "{{"
	RightDelim  string // "" means "}}"
	// ErrMissingKey fails the render on a missing map key (error_on_missing_key).
	ErrMissingKey bool
	// SandboxPath confines `file` to a folder (template.sandbox_path).
	SandboxPath string
	// FunctionDenylist names functions (globs) a template may not call.
	FunctionDenylist []string
}

// Template is one loaded template. Render is safe for concurrent use.
type Template struct {
	cfg      Config
	contents string
}

// New reads cfg.Source (unless Contents is given) and checks that the template parses, so that
// a syntax error is reported when the configuration loads, naming the file and line.
func New(cfg Config) (*Template, error) {
	t := &Template{cfg: cfg, contents: cfg.Contents}
	switch {
	case cfg.Source != "" && cfg.Contents != "":
		return nil, cttemplate.ErrTemplateContentsAndSource
	case cfg.Source == "" && cfg.Contents == "":
		return nil, cttemplate.ErrTemplateMissingContentsAndSource
	case cfg.Source != "":
		b, err := os.ReadFile(cfg.Source)
		if err != nil {
			return nil, fmt.Errorf("failed to read template: %w", err)
		}
		t.contents = string(b)
	}
	// A trial parse for syntax (function names are checked when it renders, as
	// consul-template checks them).
	tr := parse.New(t.Name())
	tr.Mode = parse.SkipFuncCheck | parse.ParseComments
	if _, err := tr.Parse(t.contents, cfg.LeftDelim, cfg.RightDelim, map[string]*parse.Tree{}); err != nil {
		return nil, fmt.Errorf("%s: parse: %w", t.Name(), err)
	}
	return t, nil
}

// Name is the template's source path, or "(dynamic)" for inline contents (as consul-template
// shows it).
func (t *Template) Name() string {
	if t.cfg.Source == "" {
		return "(dynamic)"
	}
	return t.cfg.Source
}

// Config returns what the template was made from.
func (t *Template) Config() Config { return t.cfg }

// Result is one render.
type Result struct {
	Output []byte
	// Missing names what the render waits for (consul-template's dependency names, e.g.
	// "kv.get(app/name)"); the render returned ErrWaiting when it is not empty.
	Missing []string
	// Deps is what the render read, missing or not: watch it.
	Deps Deps
}

// Render executes the template against one pass's view of the stores. When it waits for data
// it returns the Result (Deps and Missing filled, no Output) and an error wrapping ErrWaiting.
func (t *Template) Render(ctx context.Context, p *Pass) (Result, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	rs := &renderState{ctx: ctx, pass: p, sandbox: t.cfg.SandboxPath}
	nt, err := cttemplate.NewTemplate(&cttemplate.NewTemplateInput{
		Contents:         t.contents,
		Destination:      t.cfg.Destination,
		LeftDelim:        t.cfg.LeftDelim,
		RightDelim:       t.cfg.RightDelim,
		ErrMissingKey:    t.cfg.ErrMissingKey,
		ExtFuncMap:       rs.funcs(),
		FunctionDenylist: t.cfg.FunctionDenylist,
		SandboxPath:      t.cfg.SandboxPath,
	})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", t.Name(), err)
	}
	out, err := nt.Execute(&cttemplate.ExecuteInput{Brain: p.vaultBrain(), Env: p.store.Env})
	if out != nil {
		rs.vaultDeps(out)
	}
	res := Result{Deps: rs.deps.done(), Missing: slices.Clone(rs.missing)}
	if rs.fatal != nil { // a store error: stale beats partial
		return res, fmt.Errorf("%s: %w: %w", t.Name(), ErrStore, rs.fatal)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", t.Name(), p.scrub(err))
	}
	if len(res.Missing) > 0 {
		return res, fmt.Errorf("%s: %w: %v", t.Name(), ErrWaiting, res.Missing)
	}
	res.Output = out.Output
	return res, nil
}
