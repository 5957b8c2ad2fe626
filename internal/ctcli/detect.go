package ctcli

import (
	"flag"
	"path/filepath"
	"strings"

	"github.com/hashicorp/consul-template/config"
)

// sharedFlags are consul-template flags that reconf's own command line has too (same name):
// alone they do not say which one is meant.
var sharedFlags = map[string]bool{"log-level": true, "version": true, "wait": true}

// ctOnly is the set of consul-template's flag names that reconf's own command line lacks.
var ctOnly = func() map[string]bool {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	defineFlags(fs, config.DefaultConfig(), &cliState{})
	m := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if !sharedFlags[f.Name] {
			m[f.Name] = true
		}
	})
	return m
}()

// IsConsulTemplate reports whether a command line is meant for consul-template: argv0's base
// name is "consul-template" (or "consul-template.exe"), or args hold a flag that only
// consul-template has (-template, -consul-addr, -once, -dry, -config, -exec…, -vault-…,
// -consul-…, -v, …), recognised by its name whatever its spelling ("-x", "--x", "-x=v").
// Flags both have (-log-level, -version, -wait) and reconf's own (-config-file, -onetime,
// -node, -backend, …) do not count. Scanning stops at "--".
func IsConsulTemplate(argv0 string, args []string) bool {
	base := filepath.Base(argv0)
	if base == "consul-template" || base == "consul-template.exe" {
		return true
	}
	for _, a := range args {
		if a == "--" {
			return false
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name := a[1:]
		if name[0] == '-' {
			name = name[1:]
		}
		if name, _, _ = strings.Cut(name, "="); ctOnly[name] {
			return true
		}
	}
	return false
}
