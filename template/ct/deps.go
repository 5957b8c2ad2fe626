package ct

import (
	"slices"

	"github.com/reconf/reconf/backends"
)

// Deps is what a render read: the store prefixes to watch (absolute, cleaned), whether it read
// services or the catalog, the files it read, and the Vault dependencies it used (their
// consul-template names, e.g. "vault.read(secret/db)"; Vault watches them itself).
type Deps struct {
	Prefixes []string
	Services bool
	Files    []string
	Vault    []string
}

// Merge returns the union of d and o.
func (d Deps) Merge(o Deps) Deps {
	return Deps{
		Prefixes: backends.Dedupe(append(slices.Clone(d.Prefixes), o.Prefixes...)),
		Services: d.Services || o.Services,
		Files:    sortedUnique(append(slices.Clone(d.Files), o.Files...)),
		Vault:    sortedUnique(append(slices.Clone(d.Vault), o.Vault...)),
	}
}

// Equal reports whether d and o name the same dependencies.
func (d Deps) Equal(o Deps) bool {
	return d.Services == o.Services && slices.Equal(d.Prefixes, o.Prefixes) && slices.Equal(d.Files, o.Files) &&
		slices.Equal(d.Vault, o.Vault)
}

// recorder collects a render's dependencies.
type recorder struct {
	prefixes []string
	services bool
	files    []string
	vault    []string
}

func (r *recorder) prefix(p string) { r.prefixes = append(r.prefixes, p) }
func (r *recorder) file(p string)   { r.files = append(r.files, p) }

func (r *recorder) done() Deps {
	return Deps{Prefixes: backends.Dedupe(r.prefixes), Services: r.services, Files: sortedUnique(r.files),
		Vault: sortedUnique(r.vault)}
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
