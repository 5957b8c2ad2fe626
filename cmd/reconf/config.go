package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/reconf/reconf/resource"
)

// errUsage marks a mistake in what the user gave us (flag, variable, config file, value): the
// command exits 2. Test with errors.Is.
var errUsage = errors.New("invalid usage")

// usageError is an error that is errUsage without saying so in its message.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

// usagef returns an error that exits 2.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// config is the outcome of resolving flags, environment, config file and defaults.
type config struct {
	opts     options
	source   map[string]string      // flag name → where its value came from, for errors
	warnings []string               // to log once the logger exists (unknown file keys, …)
	help     bool                   // -h was given
	stores   map[string]*namedStore // the config file's [backends.NAME] tables
}

// envPrefix starts every variable reconf reads.
const envPrefix = "RECONF_"

// envName returns the variable that sets the flag: RECONF_ and the name in upper case with
// '-' as '_'; -node is RECONF_NODES. Lists are comma-separated.
func envName(flagName string) string {
	if flagName == "node" {
		return envPrefix + "NODES"
	}
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// noEnv lists the flags that no variable or file key sets.
var noEnv = map[string]bool{"version": true}

// noFileKey lists the flags that the config file cannot set.
var noFileKey = map[string]bool{"version": true, "config-file": true}

// resolve computes the effective options from args (without the program name), the
// environment and the config file: flags > RECONF_* variables > file > defaults. Only flags
// given explicitly override.
func resolve(args []string, getenv func(string) string) (*config, error) {
	// Pass 1: parse the flags on their own, to validate them and learn which were given.
	var given options
	gfs := newFlagSet(&given)
	gfs.SetOutput(io.Discard)
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &config{opts: given, help: true}, nil
		}
		return nil, usagef("%v", err)
	}
	if gfs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (flags only, or the subcommands register and deregister)", gfs.Arg(0))
	}
	set := map[string]*flag.Flag{}
	gfs.Visit(func(f *flag.Flag) { set[f.Name] = f })

	c := &config{source: map[string]string{}}
	fs := newFlagSet(&c.opts)
	fs.VisitAll(func(f *flag.Flag) { c.source[f.Name] = "default" })

	// The config file's name comes from the flag or the variable.
	path := c.opts.ConfigFile
	if v := getenv(envName("config-file")); v != "" {
		path = v
		c.source["config-file"] = envName("config-file")
	}
	if f := set["config-file"]; f != nil {
		path = f.Value.String()
		c.source["config-file"] = "-config-file"
	}
	c.opts.ConfigFile = path
	if err := c.applyFile(fs, path); err != nil {
		return nil, err
	}
	if err := c.applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	// Flags last: only those given.
	for name, f := range set {
		if err := setValue(fs, name, f.Value.(flag.Getter).Get()); err != nil {
			return nil, usagef("-%s: %v", name, err)
		}
		c.source[name] = "-" + name
	}
	c.opts.ConfigFile = path
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// setValue sets flag name on fs from a typed value.
func setValue(fs *flag.FlagSet, name string, v any) error {
	f := fs.Lookup(name)
	switch v := v.(type) {
	case []string:
		f.Value.(*listValue).replace(v)
		return nil
	case time.Duration:
		return fs.Set(name, v.String())
	default:
		return fs.Set(name, fmt.Sprint(v))
	}
}

// applyEnv applies the RECONF_* variables that are set and not empty.
func (c *config) applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || noEnv[f.Name] || f.Name == "config-file" {
			return
		}
		name := envName(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if _, isList := f.Value.(*listValue); isList {
			var list []string
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					list = append(list, s)
				}
			}
			f.Value.(*listValue).replace(list)
		} else if e := fs.Set(f.Name, v); e != nil {
			err = usagef("%s: invalid value %q: %v", name, redactValue(f.Name, v), unwrapParse(e))
			return
		}
		c.source[f.Name] = name
	})
	return err
}

// fileKeyAlias maps confd.toml keys whose names are not the flag's name.
var fileKeyAlias = map[string]string{
	"nodes":          "node",
	"client_cakeys":  "client-ca-keys",
	"client-cakeys":  "client-ca-keys",
	"client_ca_keys": "client-ca-keys",
}

// flagForKey returns the flag a config-file key sets: confd's snake_case keys and their
// kebab-case spellings both work.
func flagForKey(fs *flag.FlagSet, key string) *flag.Flag {
	name, ok := fileKeyAlias[key]
	if !ok {
		name = strings.ReplaceAll(key, "_", "-")
	}
	if noFileKey[name] {
		return nil
	}
	return fs.Lookup(name)
}

// applyFile reads the TOML config file at path, if it exists. Unknown keys are warnings.
func (c *config) applyFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return usagef("config file %s: %v", path, err)
	}
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if secretLine(data, pe.Position.Line) {
				msg = "invalid value (not shown: the key holds a secret)" // the parser quotes what it read
			}
			return usagef("config file %s:%d: %s", path, pe.Position.Line, msg)
		}
		return usagef("config file %s: %v", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "backends" {
			if err := c.applyStores(path, data, m[k]); err != nil {
				return err
			}
			continue
		}
		where := fmt.Sprintf("%s:%d", path, lineOf(data, k))
		f := flagForKey(fs, k)
		if f == nil {
			c.warnings = append(c.warnings, fmt.Sprintf("config file %s: unknown key %q ignored", where, k))
			continue
		}
		v, err := fileValue(f, m[k])
		if err == nil {
			err = setValue(fs, f.Name, v)
		}
		if err != nil {
			return usagef("config file %s: key %q: %v", where, k, unwrapParse(err))
		}
		c.source[f.Name] = where
	}
	return nil
}

// fileValue converts a TOML value to the flag's type: booleans must be TOML booleans,
// -interval an integer, lists an array of strings (or one string), durations a string such
// as "30s" (or an integer, in seconds), the rest strings.
func fileValue(f *flag.Flag, v any) (any, error) {
	want := f.Value.(flag.Getter).Get()
	bad := func(kind string) error { return fmt.Errorf("want %s, got %s", kind, tomlType(v)) }
	switch want.(type) {
	case bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, bad("a boolean")
	case int:
		if n, ok := v.(int64); ok {
			return n, nil
		}
		return nil, bad("an integer")
	case time.Duration:
		switch v := v.(type) {
		case int64:
			return time.Duration(v) * time.Second, nil
		case string:
			return time.ParseDuration(v)
		}
		return nil, bad(`a duration such as "30s"`)
	case []string:
		switch v := v.(type) {
		case string:
			return []string{v}, nil
		case []any:
			out := make([]string, 0, len(v))
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, bad("an array of strings")
				}
				out = append(out, s)
			}
			return out, nil
		}
		return nil, bad("an array of strings")
	default:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, bad("a string")
	}
}

func tomlType(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// lineOf finds the line where key is assigned at the top level of a TOML document (0 if not
// found: the error then names the file only).
func lineOf(data []byte, key string) int {
	re := regexp.MustCompile(`^\s*["']?` + regexp.QuoteMeta(key) + `["']?\s*=`)
	for i, line := range strings.Split(string(data), "\n") {
		if re.MatchString(line) {
			return i + 1
		}
	}
	return 0
}

// secretLine reports whether line n (from 1) of a TOML file sets a key that holds a secret on
// some backend (password, auth_token, secret_id, client_key).
func secretLine(data []byte, n int) bool {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return false
	}
	key, _, ok := strings.Cut(lines[n-1], "=")
	if !ok {
		return false
	}
	key = strings.Trim(strings.TrimSpace(key), `"'`)
	name, ok := fileKeyAlias[key]
	if !ok {
		name = strings.ReplaceAll(key, "_", "-")
	}
	return isSecret(name, "redis")
}

// unwrapParse shortens strconv errors ("strconv.ParseInt: parsing "x": invalid syntax") to
// their cause.
func unwrapParse(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

// validate checks the values whose syntax the flag package does not know.
func (c *config) validate() error {
	o := &c.opts
	from := func(name string) string {
		if s := c.source[name]; s != "" && s != "-"+name {
			return " (from " + s + ")"
		}
		return ""
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		return usagef("-log-level%s: %v", from("log-level"), err)
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		return usagef("-log-format%s: %q is not text or json", from("log-format"), o.LogFormat)
	}
	if o.Interval <= 0 {
		return usagef("-interval%s: %d is not a positive number of seconds", from("interval"), o.Interval)
	}
	if o.CheckTimeout <= 0 {
		return usagef("-check-timeout%s: %v is not positive", from("check-timeout"), o.CheckTimeout)
	}
	if o.ReloadTimeout <= 0 {
		return usagef("-reload-timeout%s: %v is not positive", from("reload-timeout"), o.ReloadTimeout)
	}
	if o.Scheme != "http" && o.Scheme != "https" {
		return usagef("-scheme%s: %q is not http or https", from("scheme"), o.Scheme)
	}
	if o.ProbeInterval < 0 {
		return usagef("-probe-interval%s: %v is negative", from("probe-interval"), o.ProbeInterval)
	}
	if o.Backend == "" {
		return usagef("-backend%s: empty", from("backend"))
	}
	if o.Wait != "" {
		if _, err := resource.ParseWait(o.Wait); err != nil {
			return usagef("-wait%s: %v", from("wait"), err)
		}
	}
	return nil
}
