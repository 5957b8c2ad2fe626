package ct

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	texttemplate "text/template"

	dep "github.com/hashicorp/consul-template/dependency"

	"github.com/reconf/reconf/backends"
)

// ErrUnsupported is returned by the consul-template functions this build does not offer.
var ErrUnsupported = errors.New("not available in reconf")

// vaultFuncs are consul-template's own functions that read Vault: they read the pass's Brain
// when the Store has a Vault, and are unsupported without one.
var vaultFuncs = []string{"secret", "secrets", "pkiCert"}

// unsupported are consul-template's functions that need Nomad, Consul Connect, CA, peering or
// partitions, or an external plugin.
var unsupported = []string{
	"connect", "caRoots", "caLeaf", "partitions", "peerings",
	"exportedServices", "importedServices", "nomadServices", "nomadService", "nomadVarList",
	"nomadVarListSafe", "nomadVar", "nomadVarExists", "plugin",
}

// renderState is what the data functions of one render see.
type renderState struct {
	ctx     context.Context
	pass    *Pass
	sandbox string
	deps    recorder
	missing []string
	fatal   error // the first store error: the render fails with it
}

func (rs *renderState) fail(err error) {
	if rs.fatal == nil {
		rs.fatal = err
	}
}

func (rs *renderState) wait(d fmt.Stringer) {
	s := d.String()
	if !slices.Contains(rs.missing, s) {
		rs.missing = append(rs.missing, s)
	}
}

// funcs returns the functions that replace consul-template's data functions.
func (rs *renderState) funcs() texttemplate.FuncMap {
	fm := texttemplate.FuncMap{
		"key":          rs.key,
		"keyExists":    rs.keyExists,
		"keyOrDefault": rs.keyOrDefault,
		"ls":           func(s string) ([]*dep.KeyPair, error) { return rs.ls(s, true) },
		"safeLs":       func(s string) ([]*dep.KeyPair, error) { return rs.ls(s, false) },
		"tree":         func(s string) ([]*dep.KeyPair, error) { return rs.tree(s, true) },
		"safeTree":     func(s string) ([]*dep.KeyPair, error) { return rs.tree(s, false) },
		"file":         rs.file,
		"service":      rs.service,
		"services":     rs.services,
		"node":         rs.node,
		"nodes":        rs.nodes,
		"datacenters":  rs.datacenters,
	}
	off := unsupported
	if rs.pass.store.Vault == nil {
		off = append(slices.Clone(off), vaultFuncs...)
	}
	for _, name := range off {
		fm[name] = func(...any) (string, error) {
			return "", fmt.Errorf("%s: %w", name, ErrUnsupported)
		}
	}
	return fm
}

// kvGet reads one key: its query, its value and whether it exists.
func (rs *renderState) kvGet(s string) (*dep.KVGetQuery, string, bool, error) {
	d, err := dep.NewKVGetQuery(s)
	if err != nil {
		return nil, "", false, err
	}
	m := match(dep.KVGetQueryRe, s)
	p := backends.CleanPrefix(m["key"])
	rs.deps.prefix(p)
	if rs.pass.store.Consul != nil {
		data, err := rs.pass.fetch(d)
		if err != nil {
			rs.fail(err)
			return d, "", false, nil
		}
		if data == nil { // no such key
			return d, "", false, nil
		}
		return d, data.(string), true, nil
	}
	if err := errConsulOnly(d, m); err != nil {
		return d, "", false, err
	}
	kv, err := rs.pass.get(rs.ctx, p)
	if err != nil {
		rs.fail(fmt.Errorf("%s: %w", d, err))
		return d, "", false, nil
	}
	// The key as written, not cleaned: "app/name/" is another key than "app/name" (a folder
	// marker, as Consul's UI makes them).
	v, ok := kv["/"+m["key"]]
	return d, v, ok, nil
}

func (rs *renderState) key(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	d, v, ok, err := rs.kvGet(s)
	if err == nil && !ok && rs.fatal == nil {
		rs.wait(d) // a missing key blocks the render, as in consul-template
	}
	return v, err
}

func (rs *renderState) keyExists(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	_, _, ok, err := rs.kvGet(s)
	return ok, err
}

func (rs *renderState) keyOrDefault(s, def string) (string, error) {
	if s == "" {
		return def, nil
	}
	_, v, ok, err := rs.kvGet(s)
	if err != nil {
		return "", err
	}
	if !ok || v == "" {
		return def, nil
	}
	return v, nil
}

// kvList lists every key under a prefix as Consul's KV list does: a string prefix, keys in
// byte order, .Key relative to the prefix without leading slashes.
func (rs *renderState) kvList(s string) (*dep.KVListQuery, []*dep.KeyPair, error) {
	d, err := dep.NewKVListQuery(s)
	if err != nil {
		return nil, nil, err
	}
	m := match(dep.KVListQueryRe, s)
	prefix := m["prefix"]
	watch := backends.CleanPrefix(prefix) // a folder: the keys under it
	if !strings.HasSuffix(prefix, "/") {
		watch = path.Dir(watch) // a string prefix: its parent holds every match
	}
	rs.deps.prefix(watch)
	if rs.pass.store.Consul != nil {
		data, err := rs.pass.fetch(d)
		if err != nil {
			rs.fail(err)
			return d, nil, nil
		}
		pairs, _ := data.([]*dep.KeyPair)
		return d, pairs, nil
	}
	if err := errConsulOnly(d, m); err != nil {
		return d, nil, err
	}
	kv, err := rs.pass.get(rs.ctx, watch)
	if err != nil {
		rs.fail(fmt.Errorf("%s: %w", d, err))
		return d, nil, nil
	}
	// Consul's KV list matches a string prefix, its leading slash dropped ("/" lists
	// everything); .Key is what follows the prefix as written.
	from := strings.TrimPrefix(prefix, "/")
	keys := make([]string, 0, len(kv))
	for k := range kv {
		if strings.HasPrefix(k[1:], from) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	pairs := make([]*dep.KeyPair, 0, len(keys))
	for _, k := range keys {
		p := k[1:]
		pairs = append(pairs, &dep.KeyPair{
			Path:  p,
			Key:   strings.TrimLeft(strings.TrimPrefix(p, prefix), "/"),
			Value: kv[k],
		})
	}
	return d, pairs, nil
}

// ls keeps the top-level keys of a listing (no folders, no deeper keys), as consul-template's
// ls does.
func (rs *renderState) ls(s string, emptyIsSafe bool) ([]*dep.KeyPair, error) {
	return rs.list(s, emptyIsSafe, func(p *dep.KeyPair) bool {
		return p.Key != "" && !strings.Contains(p.Key, "/")
	})
}

// tree keeps every key of a listing but the folder markers (keys ending in '/').
func (rs *renderState) tree(s string, emptyIsSafe bool) ([]*dep.KeyPair, error) {
	return rs.list(s, emptyIsSafe, func(p *dep.KeyPair) bool {
		return p.Key != "" && !strings.HasSuffix(p.Key, "/")
	})
}

// list is ls and tree: the pairs of a listing that keep accepts. An empty answer blocks the
// render unless emptyIsSafe (safeLs and safeTree pass false).
func (rs *renderState) list(s string, emptyIsSafe bool, keep func(*dep.KeyPair) bool) ([]*dep.KeyPair, error) {
	result := []*dep.KeyPair{}
	if s == "" {
		return result, nil
	}
	d, pairs, err := rs.kvList(s)
	if err != nil {
		return result, err
	}
	for _, p := range pairs {
		if keep(p) {
			result = append(result, p)
		}
	}
	if len(result) == 0 && !emptyIsSafe && rs.fatal == nil {
		rs.wait(d)
	}
	return result, nil
}

// file returns a file's contents; a missing file blocks the render, as in consul-template.
func (rs *renderState) file(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	p, err := sandboxed(rs.sandbox, strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	d, err := dep.NewFileQuery(p)
	if err != nil {
		return "", err
	}
	rs.deps.file(p)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		rs.wait(d)
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", d, err)
	}
	return string(b), nil
}

// sandboxed resolves a `file` path, refusing one outside the sandbox folder.
func sandboxed(sandbox, p string) (string, error) {
	if sandbox == "" {
		return filepath.Clean(p), nil
	}
	sb, err := filepath.EvalSymlinks(filepath.Clean(sandbox))
	if err != nil {
		return "", fmt.Errorf("failed to resolve sandbox path: %w", err)
	}
	target, err := filepath.EvalSymlinks(filepath.Clean(p))
	if err != nil {
		return "", fmt.Errorf("failed to resolve target path: %w", err)
	}
	rel, err := filepath.Rel(sb, target)
	if err != nil {
		return "", fmt.Errorf("failed to get relative path: %w", err)
	}
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("'%s' is outside of sandbox", p)
	}
	return target, nil
}
