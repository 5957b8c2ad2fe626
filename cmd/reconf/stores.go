package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/runner"
	"github.com/reconf/reconf/resource"
)

// storeFlags are the settings a [backends.NAME] table may set: those of a backend.
var storeFlags = map[string]bool{
	"backend": true, "node": true, "scheme": true, "srv-domain": true, "srv-record": true,
	"client-cert": true, "client-key": true, "client-ca-keys": true, "client-insecure": true,
	"basic-auth": true, "username": true, "password": true, "auth-token": true, "auth-type": true,
	"app-id": true, "user-id": true, "role-id": true, "secret-id": true, "path": true,
	"separator": true, "file": true, "filter": true, "probe-interval": true,
}

// namedStore is one [backends.NAME] table of the config file: a backend that template
// resources name with `backend = "NAME"`. It inherits nothing from the global settings, and
// no flag or variable sets it.
type namedStore struct {
	opts  options
	where string // file:line of its table, for errors
}

// applyStores reads the [backends.NAME] tables (v is the file's "backends" value).
func (c *config) applyStores(path string, data []byte, v any) error {
	tables, ok := v.(map[string]any)
	if !ok {
		return usagef("config file %s:%d: backends: want [backends.NAME] tables, got %s", path, lineOf(data, "backends"), tomlType(v))
	}
	c.stores = map[string]*namedStore{}
	for _, name := range slices.Sorted(maps.Keys(tables)) {
		header := tableLine(data, name)
		where := fmt.Sprintf("%s:%d", path, header)
		if name == resource.DefaultBackend || name == "" {
			return usagef("config file %s: [backends.%s]: %q is the global backend's name; choose another", where, name, name)
		}
		keys, ok := tables[name].(map[string]any)
		if !ok {
			return usagef("config file %s: backends.%s: want a table, got %s", where, name, tomlType(tables[name]))
		}
		st := &namedStore{where: where}
		fs := newFlagSet(&st.opts)
		st.opts.Backend = ""
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			kwhere := fmt.Sprintf("%s:%d", path, keyLineIn(data, header, k))
			f := flagForKey(fs, k)
			if f == nil || !storeFlags[f.Name] {
				return usagef("config file %s: [backends.%s]: %q is not a backend setting (allowed: the global backend keys, such as backend, nodes, auth_type, role_id)", kwhere, name, k)
			}
			val, err := fileValue(f, keys[k])
			if err == nil {
				err = setValue(fs, f.Name, val)
			}
			if err != nil {
				return usagef("config file %s: [backends.%s]: key %q: %v", kwhere, name, k, unwrapParse(err))
			}
		}
		if st.opts.Backend == "" {
			return usagef("config file %s: [backends.%s]: backend is required (one of %s)", where, name, strings.Join(backends.Names(), ", "))
		}
		if s := st.opts.Scheme; s != "http" && s != "https" {
			return usagef("config file %s: [backends.%s]: scheme %q is not http or https", where, name, s)
		}
		c.stores[name] = st
	}
	return nil
}

// tableLine is the line of the [backends.NAME] header (0 if not found: a dotted-key or
// inline spelling).
func tableLine(data []byte, name string) int {
	re := regexp.MustCompile(`^\s*\[\s*backends\s*\.\s*(` + regexp.QuoteMeta(name) + `|"` + regexp.QuoteMeta(name) + `"|'` + regexp.QuoteMeta(name) + `')\s*\]`)
	for i, line := range strings.Split(string(data), "\n") {
		if re.MatchString(line) {
			return i + 1
		}
	}
	return 0
}

// keyLineIn is the line of key in the table whose header is on line header (the header's
// line when not found).
func keyLineIn(data []byte, header int, key string) int {
	if header == 0 {
		return 0
	}
	lines := strings.Split(string(data), "\n")
	end := header
	for end < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[end]), "[") {
		end++
	}
	if n := lineOf([]byte(strings.Join(lines[header:end], "\n")), key); n > 0 {
		return header + n
	}
	return header
}

// storeNames are the names of the named stores, sorted.
func (c *config) storeNames() []string { return slices.Sorted(maps.Keys(c.stores)) }

// sameStores reports whether a and b configure the same named stores (a reload cannot
// change them).
func sameStores(a, b *config) bool {
	if len(a.stores) != len(b.stores) {
		return false
	}
	for name, sa := range a.stores {
		sb, ok := b.stores[name]
		if !ok || !reflect.DeepEqual(backendOptions(&sa.opts), backendOptions(&sb.opts)) {
			return false
		}
	}
	return true
}

// openStores builds the named stores. A store configured as the global backend (def) or as
// another store is that backend: each distinct configuration is opened once. On an error the
// ones opened are closed; the error says whether it is the user's (errUsage: exit 2).
func openStores(c *config, def backends.Backend, log *slog.Logger) (map[string]runner.Store, func(), error) {
	type opened struct {
		driver string
		o      backends.Options
		b      backends.Backend
	}
	identity := func(o *options) backends.Options {
		bo := backendOptions(o)
		bo.ServicesPrefix = "" // read by package discovery, not by the backend
		return bo
	}
	all := []opened{{c.opts.Backend, identity(&c.opts), def}}
	var owned []backends.Backend
	closeAll := func() {
		for _, b := range owned {
			_ = b.Close()
		}
	}
	out := map[string]runner.Store{}
	for _, name := range c.storeNames() {
		st := c.stores[name]
		o := identity(&st.opts)
		var b backends.Backend
		for _, x := range all {
			if x.driver == st.opts.Backend && reflect.DeepEqual(x.o, o) {
				b = x.b
				break
			}
		}
		if b == nil {
			var err error
			if b, err = backends.New(st.opts.Backend, backendOptions(&st.opts)); err != nil {
				closeAll()
				err = fmt.Errorf("[backends.%s] (%s): %w", name, st.where, err)
				if errors.Is(err, backends.ErrUnknownBackend) || errors.Is(err, backends.ErrConfig) {
					return nil, nil, &usageError{msg: err.Error()}
				}
				return nil, nil, err
			}
			owned = append(owned, b)
			all = append(all, opened{st.opts.Backend, o, b})
		}
		out[name] = runner.Store{Driver: st.opts.Backend, Backend: b}
		log.Debug("backend", "name", name, "backend", st.opts.Backend, "nodes", redactNodes(st.opts.Nodes.values()))
	}
	return out, closeAll, nil
}
