package template

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	texttemplate "text/template"

	"github.com/reconf/reconf/backends"
)

// CONTRACT (kept by the implementation; other packages code against it).

// Config says what to parse.
type Config struct {
	Resource        string // resource name (errors leave it to the caller, who names it once)
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
	KV map[string]string
	// Keys, when not nil, is the snapshot instead of KV (which is then ignored): the keys
	// sorted, without duplicates, and Values[i] the value of Keys[i]. A caller that has the
	// keys sorted already spares the render building a map and sorting. The render only reads
	// them.
	Keys, Values []string
	Services     Services
}

// Template is a parsed template; Render is safe for concurrent use.
type Template struct {
	cfg Config

	name string // the root template's name (cfg.Src as written)
	// base is the parsed set, never executed, only cloned for text/template renders. A set
	// the fast executor runs needs it only for the rare render it hands back (to report an
	// error as text/template words it), so it is parsed again from srcs then: each set holds
	// copies of the function maps (about 80 kB), which 50 resources would keep for nothing.
	baseMu sync.Mutex
	base   *texttemplate.Template
	srcs   []source
	pool   sync.Pool // of *instance
	// files are the paths Parse read, root first.
	files []string
	// getvOneArg: no call to getv passes a default, so it is bound without its variadic tail
	// (see oneArgOnly).
	getvOneArg bool
	// usesServices: some file calls `service` or `services` (see UsesServices).
	usesServices bool
	// fast is the template set compiled for the fast executor (fastexec.go); nil: the set
	// uses something only text/template does.
	fast *fastProg
}

// instance is a clone of the parsed template whose functions are bound to st. The pool hands
// an instance to one render at a time, so st needs no lock; cloning happens only when the pool
// is empty, which keeps the per-render cost to a pool Get/Put.
type instance struct {
	tmpl *texttemplate.Template
	st   *renderState
}

// renderState is what the bound functions of one render see.
type renderState struct {
	ctx      context.Context
	store    *store
	services Services
	depth    int // include nesting
	svcMemo  map[string][]backends.Service
	listMemo []ServiceSnippet // `services`; nil until asked
}

// Parse reads and parses cfg.Src and every file it includes (`include "x.tmpl"`, cycles are
// an error). Errors name the file and the line, once: `parse app.tmpl:3: unexpected "}"`,
// `parse app.tmpl:2:2: include: part.tmpl:1: missing value for if`; the caller names the
// resource.
func Parse(cfg Config) (*Template, error) {
	t := &Template{cfg: cfg, name: cfg.Src}
	base := newBase(cfg)
	p := &parser{cfg: cfg, root: base, done: map[string]bool{}}
	if err := p.parseFile(cfg.Src, nil, ""); err != nil {
		return nil, err
	}
	t.base = base
	t.files = p.files
	_, t.getvOneArg = funcUse(base, "getv")
	usesService, _ := funcUse(base, "service")
	usesServices, _ := funcUse(base, "services")
	t.usesServices = usesService || usesServices
	t.fast = compileFast(base, cfg.MissingKeyError)
	if t.fast != nil {
		t.base, t.srcs = nil, p.srcs
	}
	return t, nil
}

// newBase returns an empty set with the functions, delimiters and options of cfg.
func newBase(cfg Config) *texttemplate.Template {
	base := texttemplate.New(cfg.Src).Funcs(staticFuncs()).Funcs(boundFuncs(&instance{}))
	base.Delims(cfg.LeftDelim, cfg.RightDelim)
	if cfg.MissingKeyError {
		base.Option("missingkey=error")
	}
	return base
}

// textTemplate returns the parsed set, parsing it again from the sources Parse read if it
// was let go (the texts parsed then, not the files as they are now).
func (t *Template) textTemplate() (*texttemplate.Template, error) {
	t.baseMu.Lock()
	defer t.baseMu.Unlock()
	if t.base != nil {
		return t.base, nil
	}
	base := newBase(t.cfg)
	for _, src := range t.srcs {
		tmpl := base
		if src.key != "" {
			tmpl = base.New(src.key)
		}
		if _, err := tmpl.Parse(src.text); err != nil {
			return nil, err
		}
	}
	t.base = base
	return base, nil
}

// UsesServices reports whether the template (its includes too) calls `service` or
// `services`, so that a runner knows which resources a change of service instances concerns.
func (t *Template) UsesServices() bool { return t.usesServices }

// Render executes the template against d into memory. Errors name the template file and line
// and, for a missing key, the key, each once: `app.tmpl:2:5: getv: key does not exist: /db/x`
// (see execError); the caller names the resource.
func (t *Template) Render(ctx context.Context, d Data) ([]byte, error) {
	return t.render(ctx, d, t.fast)
}

// render executes the template with the fast executor when fast is not nil and it completes,
// else (and for the error) with text/template.
func (t *Template) render(ctx context.Context, d Data, fast *fastProg) ([]byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	var st *store
	if d.Keys != nil {
		st = newSortedStore(d.Keys, d.Values)
	} else {
		st = newStore(d.KV)
	}
	rs := &renderState{ctx: ctx, store: st, services: d.Services}
	var buf bytes.Buffer
	if fast != nil {
		if fast.render(rs, &buf) == nil {
			return buf.Bytes(), nil
		}
		buf.Reset()
		rs.depth = 0
	}
	inst, err := t.get()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	inst.st = rs
	err = inst.tmpl.Execute(&buf, nil)
	inst.st = nil
	t.pool.Put(inst)
	if err != nil {
		return nil, cleanExec(err)
	}
	return buf.Bytes(), nil
}

// Name returns the root template's name (Config.Src as given).
func (t *Template) Name() string { return t.name }

// Files returns the paths of the files Parse read: the template first, then its partials in
// the order they were included. A caller watching templates for changes watches these.
func (t *Template) Files() []string { return slices.Clone(t.files) }

// get takes an instance from the pool or clones a new one.
func (t *Template) get() (*instance, error) {
	if v := t.pool.Get(); v != nil {
		return v.(*instance), nil
	}
	base, err := t.textTemplate()
	if err != nil {
		return nil, err
	}
	c, err := base.Clone()
	if err != nil {
		return nil, err
	}
	inst := &instance{}
	fm := boundFuncs(inst)
	if t.getvOneArg {
		fm["getv"] = func(key string) (string, error) { return inst.st.store.getv(key) }
	}
	inst.tmpl = c.Funcs(fm)
	return inst, nil
}

// boundFuncs returns the functions that read the current render's state through inst.
func boundFuncs(inst *instance) texttemplate.FuncMap {
	s := func() *store { return inst.st.store }
	ctx := func() context.Context { return inst.st.ctx }
	return texttemplate.FuncMap{
		"get":        func(key string) (KVPair, error) { return s().get(key) },
		"getv":       func(key string, def ...string) (string, error) { return s().getv(key, def...) },
		"exists":     func(key string) bool { return s().exists(key) },
		"gets":       func(pattern string) (KVPairs, error) { return s().gets(pattern) },
		"getvs":      func(pattern string) ([]string, error) { return s().getvs(pattern) },
		"ls":         func(p string) []string { return s().ls(p) },
		"lsdir":      func(p string) []string { return s().lsdir(p) },
		"lookupIP":   func(host string) []string { return lookupIP(ctx(), host) },
		"lookupIPV4": func(host string) []string { return lookupIPFamily(ctx(), host, ".") },
		"lookupIPV6": func(host string) []string { return lookupIPFamily(ctx(), host, ":") },
		"lookupSRV":  func(svc, proto, name string) []*net.SRV { return lookupSRV(ctx(), svc, proto, name) },
		"service":    func(name string) ([]backends.Service, error) { return inst.st.service(name) },
		"services":   func() ([]ServiceSnippet, error) { return inst.st.serviceList() },
		"include":    inst.include,
	}
}

// maxIncludeDepth bounds include nesting at render time (a name computed at render time could
// otherwise recurse without end; literal cycles are refused by Parse).
const maxIncludeDepth = 64

// include executes the partial parsed under name (optionally with data as dot) and returns
// its output.
func (inst *instance) include(name string, data ...any) (string, error) {
	key := includeKey(name)
	pt := inst.tmpl.Lookup(key)
	if pt == nil {
		return "", fmt.Errorf("%w: %q was not parsed (include takes a string literal)", ErrInclude, name)
	}
	if inst.st.depth >= maxIncludeDepth {
		return "", fmt.Errorf("%w: %q nested deeper than %d", ErrInclude, name, maxIncludeDepth)
	}
	var dot any
	if len(data) > 0 {
		dot = data[0]
	}
	inst.st.depth++
	defer func() { inst.st.depth-- }()
	var buf bytes.Buffer
	if err := pt.Execute(&buf, dot); err != nil {
		return "", cleanExec(err)
	}
	return buf.String(), nil
}

// resolve returns the file a template name refers to.
func (c Config) resolve(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(c.Dir, filepath.FromSlash(name))
}
