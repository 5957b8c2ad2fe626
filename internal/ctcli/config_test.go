package ctcli

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul-template/config"
)

func sources(s *Settings) []string {
	var r []string
	for _, t := range s.Templates {
		r = append(r, filepath.Base(config.StringVal(t.Source)))
	}
	return r
}

// TestPrecedence: defaults < config files in order < flags.
func TestPrecedence(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	a := write(t, dir, "a.hcl", `
consul {
  address = "a:8500"
  token   = "a-token"
  retry { attempts = 3 }
}
max_stale = "5s"
log_level = "info"
template_error_fatal = false
template { source = "a.tpl" }
`)
	b := write(t, dir, "b.hcl", `
consul { address = "b:8500" }
log_level = "err"
wait { min = "2s" }
template {
  source = "b.tpl"
  error_fatal = true
}
`)
	s := mustParse(t, "-config", a, "-template=flag.tpl:out", "-config="+b, "-log-level=debug")
	c := s.Config
	got := []any{
		config.StringVal(c.Consul.Address),         // b over a
		config.StringVal(c.Consul.Token),           // a (b leaves it)
		config.IntVal(c.Consul.Retry.Attempts),     // a, nested
		config.TimeDurationVal(c.MaxStale),         // a over default
		config.StringVal(c.LogLevel),               // flag over both
		config.TimeDurationVal(c.Wait.Min),         // b
		config.TimeDurationVal(c.Wait.Max),         // b: 4×min (Finalize)
		config.BoolVal((*c.Templates)[0].ErrFatal), // a's template_error_fatal
		config.BoolVal((*c.Templates)[1].ErrFatal), // b's own error_fatal
		config.BoolVal((*c.Templates)[2].ErrFatal), // flag template: a's template_error_fatal
	}
	want := []any{"b:8500", "a-token", 3, 5 * time.Second, "debug", 2 * time.Second, 8 * time.Second, false, true, false}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if got, want := sources(s), []string{"a.tpl", "b.tpl", "flag.tpl"}; !reflect.DeepEqual(got, want) {
		t.Errorf("template order: got %q, want %q", got, want)
	}
	for i, tm := range s.Templates {
		if tm.TemplateConfig != (*c.Templates)[i] {
			t.Errorf("Templates[%d] is not (*Config.Templates)[%d]", i, i)
		}
	}

	// -template-error-fatal overrides every template, whatever the files say.
	s = mustParse(t, "-config", a, "-config", b, "-template-error-fatal=true")
	for i, tm := range s.Templates {
		if !config.BoolVal(tm.ErrFatal) {
			t.Errorf("template %d: ErrFatal false under -template-error-fatal=true", i)
		}
	}
}

// TestConfigFolder: a folder's files (recursively, in lexical order) merge in order, between the
// -config paths around it.
func TestConfigFolder(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	folder := filepath.Join(dir, "conf.d")
	write(t, folder, "20-b.hcl", `template { source = "b.tpl" }
pid_file = "/b.pid"`)
	write(t, folder, "10-a.json", `{"template": [{"source": "a1.tpl"}, {"source": "a2.tpl", "check_command": "chk-a2"}], "pid_file": "/a.pid"}`)
	write(t, folder, "15-sub/x.hcl", `template {
  source = "sub.tpl"
  check_timeout = "3s"
}`)
	write(t, folder, "30-c", `template { source = "c.tpl" }`) // any name: consul-template reads every file
	first := write(t, dir, "first.hcl", `template { source = "first.tpl" }
pid_file = "/first.pid"
kill_signal = "SIGTERM"`)
	last := write(t, dir, "last.hcl", `template { source = "last.tpl" }`)

	s := mustParse(t, "-config", first, "-config", folder, "-config", last)
	want := []string{"first.tpl", "a1.tpl", "a2.tpl", "sub.tpl", "b.tpl", "c.tpl", "last.tpl"}
	if got := sources(s); !reflect.DeepEqual(got, want) {
		t.Errorf("order: got %q, want %q", got, want)
	}
	if got := config.StringVal(s.Config.PidFile); got != "/b.pid" {
		t.Errorf("pid_file: got %q, want the folder's last, /b.pid", got)
	}
	var ext []string
	for _, tm := range s.Templates {
		ext = append(ext, tm.CheckCommand+"|"+tm.CheckTimeout.String())
	}
	if want := []string{"|0s", "|0s", "chk-a2|0s", "|3s", "|0s", "|0s", "|0s"}; !reflect.DeepEqual(ext, want) {
		t.Errorf("extensions: got %q, want %q", ext, want)
	}

	// An empty folder is no config at all.
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if s := mustParse(t, "-config", empty); len(s.Templates) != 0 {
		t.Errorf("empty folder: %d templates", len(s.Templates))
	}
}

// TestJSONConfig: a JSON file is read as consul-template reads it, extension keys included.
func TestJSONConfig(t *testing.T) {
	cleanEnv(t)
	f := write(t, t.TempDir(), "c.json", `{
  "consul": {"address": "j:8500", "retry": {"enabled": false}},
  "wait": {"min": "1s", "max": "9s"},
  "exec": {"command": ["app", "-x"], "env": {"pristine": true}},
  "template": [
    {"source": "a.tpl", "destination": "a.out", "command": "reload a", "perms": "0600",
     "wait": {"min": "2s"}, "check_command": "check a", "check_timeout": "4s"},
    {"contents": "{{ key \"k\" }}", "destination": "b.out", "left_delimiter": "[["}
  ]
}`)
	s := mustParse(t, "-config", f)
	c := s.Config
	t0, t1 := s.Templates[0], s.Templates[1]
	got := []any{
		config.StringVal(c.Consul.Address), config.BoolVal(c.Consul.Retry.Enabled),
		config.TimeDurationVal(c.Wait.Min), config.TimeDurationVal(c.Wait.Max),
		[]string(c.Exec.Command), config.BoolVal(c.Exec.Env.Pristine),
		config.StringVal(t0.Destination), []string(t0.Command), config.FileModeVal(t0.Perms),
		config.TimeDurationVal(t0.Wait.Min), t0.CheckCommand, t0.CheckTimeout,
		config.StringVal(t1.Contents), config.StringVal(t1.LeftDelim), t1.CheckCommand,
	}
	want := []any{
		"j:8500", false, time.Second, 9 * time.Second, []string{"app", "-x"}, true,
		"a.out", []string{"reload a"}, os.FileMode(0o600), 2 * time.Second, "check a", 4 * time.Second,
		`{{ key "k" }}`, "[[", "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

// TestExtensionKeys: check_command and check_timeout per template block, lined up with the
// templates; nothing else changes.
func TestExtensionKeys(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	f := write(t, dir, "c.hcl", `
template {
  source        = "a.tpl"
  destination   = "a.out"
  check_command = "nginx -t -c {{.src}}"
  check_timeout = "10s"
  command       = "nginx -s reload"
  wait {
    min = "1s"
    max = "2s"
  }
}
template {
  source      = "b.tpl"
  destination = "b.out"
}
template {
  source        = "c.tpl"
  destination   = "c.out"
  check_command = <<EOT
test -s "$1"
EOT
}
`)
	s := mustParse(t, "-config", f, "-template", "d.tpl:d.out")
	type row struct {
		src, cmd string
		to       time.Duration
	}
	var got []row
	for _, tm := range s.Templates {
		got = append(got, row{filepath.Base(config.StringVal(tm.Source)), tm.CheckCommand, tm.CheckTimeout})
	}
	want := []row{{"a.tpl", "nginx -t -c {{.src}}", 10 * time.Second}, {"b.tpl", "", 0}, {"c.tpl", "test -s \"$1\"\n", 0}, {"d.tpl", "", 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// The rest of the block is consul-template's, unchanged by the extension keys.
	a := s.Templates[0]
	if config.TimeDurationVal(a.Wait.Min) != time.Second || config.TimeDurationVal(a.Wait.Max) != 2*time.Second ||
		join(a.Command) != "nginx -s reload" || config.StringVal(a.Destination) != "a.out" {
		t.Errorf("template a: %s", a.GoString())
	}

	// The same file without the extension keys resolves to the same consul-template config.
	plain := write(t, dir, "plain.hcl", strings.NewReplacer(
		`  check_command = "nginx -t -c {{.src}}"`+"\n", "",
		`  check_timeout = "10s"`+"\n", "",
		"  check_command = <<EOT\ntest -s \"$1\"\nEOT\n", "",
	).Replace(mustRead(t, f)))
	if strings.Contains(mustRead(t, plain), "check_") {
		t.Fatal("replacer left an extension key")
	}
	p := mustParse(t, "-config", plain, "-template", "d.tpl:d.out")
	if !sameConfig(p.Config, s.Config) {
		t.Errorf("extension keys changed the config:\n with %s\n without %s", s.Config.GoString(), p.Config.GoString())
	}
}

// sameConfig compares two configs by value (their function fields aside).
func sameConfig(a, b *config.Config) bool {
	ac, bc := *a, *b
	ac.RendererFunc, ac.ReaderFunc, bc.RendererFunc, bc.ReaderFunc = nil, nil, nil, nil
	return reflect.DeepEqual(&ac, &bc)
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReencode holds the JSON path (taken when a file has extension keys) to config.Parse's
// own result on configs touching every block.
func TestReencode(t *testing.T) {
	cleanEnv(t)
	cases := []string{
		``,
		`consul {}`,
		`consul { address = "a" }
consul { token = "b" }`,
		`consul {
  address = "127.0.0.1:8500"
  namespace = "ns"
  auth {
    enabled = true
    username = "u"
    password = "p"
  }
  retry {
    enabled = true
    attempts = 5
    backoff = "250ms"
    max_backoff = "1m"
  }
  ssl {
    enabled = true
    verify = false
    cert = "c"
    key = "k"
    ca_cert = "ca"
    ca_path = "cp"
    server_name = "sn"
  }
  token = "t"
  token_file = "tf"
  transport {
    dial_keep_alive = "10s"
    dial_timeout = "20s"
    disable_keep_alives = true
    max_idle_conns_per_host = 7
    tls_handshake_timeout = "3s"
  }
}`,
		`deduplicate {
  enabled = true
  prefix = "p/"
  max_stale = "3s"
  ttl = "20s"
}
default_delimiters {
  left = "[["
  right = "]]"
}`,
		`exec {
  command = "app -x"
  splay = "5s"
  kill_signal = "SIGTERM"
  reload_signal = "SIGUSR1"
  kill_timeout = "2s"
  env {
    pristine = true
    custom = ["A=1", "B=2"]
    allowlist = ["A*"]
    denylist = ["SECRET"]
  }
}`,
		`exec { command = ["app", "-x"] }`,
		`kill_signal = "SIGQUIT"
reload_signal = "SIGUSR2"
log_level = "debug"
max_stale = "10s"
pid_file = "/p"
block_query_wait = "30s"
err_on_failed_lookup = true
template_error_fatal = false
log_file {
  path = "/l"
  log_rotate_bytes = 10
  log_rotate_duration = "1h"
  log_rotate_max_files = 3
}
syslog {
  enabled = true
  facility = "LOCAL1"
  name = "n"
}
wait = "2s:3s"`,
		`wait {
  min = "1s"
  max = "4s"
}`,
		`vault {
  address = "https://v"
  namespace = "ns"
  renew_token = false
  token = "t"
  unwrap_token = true
  default_lease_duration = "2m"
  lease_renewal_threshold = 0.5
  retry { attempts = 2 }
  ssl {
    enabled = true
    verify = false
  }
  transport { max_conns_per_host = 4 }
}
nomad {
  address = "http://n"
  namespace = "x"
  ssl { enabled = true }
}`,
		`template {
  source = "a"
  destination = "b"
  create_dest_dirs = false
  command = ["sh", "-c", "x"]
  command_timeout = "5s"
  error_on_missing_key = true
  error_fatal = false
  perms = 0600
  backup = true
  left_delimiter = "<<"
  right_delimiter = ">>"
  function_denylist = ["plugin"]
  sandbox_path = "/s"
  user = "root"
  group = "0"
  wait {
    min = "1s"
    max = "3s"
  }
  exec {
    command = "x"
    env { pristine = true }
  }
}
template {
  contents = <<EOT
{{ key "a" }}
  indented
EOT
  destination = "c"
  perms = "0644"
  wait = "3s"
  map_to_environment_variable = "VAR"
}`,
		`{"template": {"source": "single", "destination": "d"}, "consul": {"retry": {"attempts": 0}}}`,
		`{"template": [{"source": "x", "wait": {"min": "1s"}}, {"source": "y", "exec": {"command": "z"}}], "vault": {"lease_renewal_threshold": 0.25}}`,
	}
	for _, s := range cases {
		want, wantErr := config.Parse(s)
		got, exts, err := parseOpt(s, true)
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%s\nerror: got %v, want %v", s, err, wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if templateCount(got) != len(exts) {
			t.Errorf("%s\n%d templates, %d extension sets", s, templateCount(got), len(exts))
		}
		if !sameConfig(got, want) {
			t.Errorf("%s\nre-encoded: %s\nconfig.Parse: %s", s, got.GoString(), want.GoString())
		}
		gf, wf := config.DefaultConfig().Merge(got), config.DefaultConfig().Merge(want)
		gf.Finalize()
		wf.Finalize()
		if !sameConfig(gf, wf) {
			t.Errorf("%s\nfinalized differ:\n%s\n%s", s, gf.GoString(), wf.GoString())
		}
	}
}

// TestErrors: bad flags are usage errors (13), bad configs config errors (15) naming the
// file, with consul-template's texts.
func TestErrors(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	unknown := write(t, dir, "unknown.hcl", "foo = 1\n")
	unknownExt := write(t, dir, "unknown-ext.hcl", `template {
  source = "a"
  check_command = "x"
  chek_timeout = "1s"
}`)
	malformed := write(t, dir, "malformed.hcl", "consul {\n address = \n")
	badTimeout := write(t, dir, "bad-timeout.hcl", `template {
  source = "a"
  check_timeout = "soon"
}`)
	numTimeout := write(t, dir, "num-timeout.hcl", `template {
  source = "a"
  check_timeout = 5
}`)
	badCheck := write(t, dir, "bad-check.hcl", `template {
  source = "a"
  check_command = ["a", "b"]
}`)
	badSignal := write(t, dir, "bad-signal.hcl", `kill_signal = "SIGNOPE"`)
	badDir := filepath.Join(dir, "baddir")
	write(t, badDir, "a.hcl", `template { source = "a" }`)
	write(t, badDir, "b.hcl", `nope = true`)
	missing := filepath.Join(dir, "missing.hcl")

	tests := []struct {
		args []string
		code int
		text string // a substring of the error
	}{
		{[]string{"-bogus"}, 13, "flag provided but not defined: -bogus"},
		{[]string{"-err-on-failed-lookup"}, 13, "flag provided but not defined: -err-on-failed-lookup"}, // a config key, not a flag
		{[]string{"-config-file=x"}, 13, "flag provided but not defined: -config-file"},
		{[]string{"-once=maybe"}, 13, `invalid boolean value "maybe" for -once: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"-template", ""}, 13, `invalid value "" for flag -template: template: cannot be empty`},
		{[]string{"-consul-retry-attempts=1e3"}, 13, `invalid value "1e3" for flag -consul-retry-attempts`},
		{[]string{"-consul-retry-attempts=4294967296"}, 13, `value out of range`},
		{[]string{"-wait=1s:2s:3s"}, 13, `invalid value "1s:2s:3s" for flag -wait`},
		{[]string{"-max-stale=10"}, 13, `invalid value "10" for flag -max-stale: time: missing unit in duration "10"`},
		{[]string{"-kill-signal=SIGNOPE"}, 13, `invalid value "SIGNOPE" for flag -kill-signal`},
		{[]string{"-consul-addr"}, 13, "flag needs an argument: -consul-addr"},
		{[]string{"-once", "extra"}, 13, `cli: extra args: ["extra"]`},
		{[]string{"-backend=mysql"}, 13, `invalid value "mysql" for flag -backend`},
		{[]string{"-config", unknown}, 15, "from file: " + unknown + ": mapstructure decode failed: 1 error(s) decoding:\n\n* '' has invalid keys: foo"},
		{[]string{"-config", unknownExt}, 15, "from file: " + unknownExt + ": mapstructure decode failed"},
		{[]string{"-config", unknownExt}, 15, "chek_timeout"},
		{[]string{"-config", malformed}, 15, "from file: " + malformed + ": error decoding config: At 3:2: object expected closing RBRACE got: EOF"},
		{[]string{"-config", badTimeout}, 15, "from file: " + badTimeout + `: template 1: check_timeout: time: invalid duration "soon"`},
		{[]string{"-config", numTimeout}, 15, "from file: " + numTimeout + ": template 1: check_timeout: want a duration string"},
		{[]string{"-config", badCheck}, 15, "from file: " + badCheck + ": template 1: check_command: want a string"},
		{[]string{"-config", badSignal}, 15, "from file: " + badSignal + ": mapstructure decode failed"},
		{[]string{"-config", missing}, 15, "missing file/folder: " + missing + ": stat " + missing + ": no such file or directory"},
		{[]string{"-config", badDir}, 15, "walk error: from file: " + filepath.Join(badDir, "b.hcl") + ": mapstructure decode failed"},
		{[]string{"-log-level=warning"}, 15, `invalid log level "WARNING", valid log levels are TRACE, DEBUG, INFO, WARN, ERR`},
		{[]string{"-syslog-facility=bogus"}, 15, "error setting up syslog logger: invalid syslog facility: BOGUS"}, // a facility enables syslog
		{[]string{"-version", "-config", unknown}, 15, "invalid keys: foo"},                                        // consul-template loads the config before printing its version
	}
	for _, tt := range tests {
		s, err := Parse(tt.args)
		if err == nil {
			t.Errorf("%q: no error (%+v)", tt.args, s)
			continue
		}
		if got := ExitCode(err); got != tt.code {
			t.Errorf("%q: exit %d, want %d (%v)", tt.args, got, tt.code, err)
		}
		if !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%q: error\n%s\nwant it to contain\n%s", tt.args, err, tt.text)
		}
	}

	var ue *UsageError
	if _, err := Parse([]string{"-x"}); !errors.As(err, &ue) {
		t.Errorf("bad flag: %T, want *UsageError", err)
	}
	var ce *ConfigError
	if _, err := Parse([]string{"-config", unknown}); !errors.As(err, &ce) {
		t.Errorf("bad config: %T, want *ConfigError", err)
	}
	if _, err := Parse([]string{"-config", missing}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing config: %v does not wrap os.ErrNotExist", err)
	}
	if ExitCode(nil) != 0 || ExitCode(errors.New("x")) != ExitCodeError {
		t.Error("ExitCode(nil) or ExitCode(other)")
	}
}

func TestIsConsulTemplate(t *testing.T) {
	tests := []struct {
		argv0 string
		args  []string
		want  bool
	}{
		{"consul-template", nil, true},
		{"/usr/local/bin/consul-template", []string{"-onetime"}, true},
		{"reconf", nil, false},
		{"/usr/bin/reconf", []string{"-onetime", "-backend", "consul", "-node", "1.2.3.4:8500"}, false},
		{"reconf", []string{"-config-file", "/etc/reconf/reconf.toml"}, false},
		{"reconf", []string{"-template", "a:b"}, true},
		{"reconf", []string{"--template=a:b"}, true},
		{"reconf", []string{"-consul-addr=1.2.3.4:8500"}, true},
		{"reconf", []string{"--consul-token", "x"}, true},
		{"reconf", []string{"-once"}, true},
		{"reconf", []string{"-dry"}, true},
		{"reconf", []string{"-config", "ct.hcl"}, true},
		{"reconf", []string{"-config=ct.hcl"}, true},
		{"reconf", []string{"-exec", "app"}, true},
		{"reconf", []string{"-exec-kill-signal=SIGTERM"}, true},
		{"reconf", []string{"-vault-addr=x"}, true},
		{"reconf", []string{"-parse-only"}, true},
		{"reconf", []string{"-max-stale=1s"}, true},
		{"reconf", []string{"-v"}, true},
		{"reconf", []string{"-log-level=debug", "-version", "-wait=1s"}, false}, // both have these
		{"reconf", []string{"-noop", "-confdir", "/etc/reconf", "-metrics-addr=:9100", "-services-prefix=/s", "-file=x"}, false},
		{"reconf", []string{"-onetime", "--", "-template"}, false},
		{"reconf", []string{"-h"}, false},
		{"reconf", []string{"template", "once"}, false},
		{"reconf", []string{"-templates"}, false},
		{"reconf", []string{"---template"}, false},
	}
	for _, tt := range tests {
		if got := IsConsulTemplate(tt.argv0, tt.args); got != tt.want {
			t.Errorf("IsConsulTemplate(%q, %q) = %v, want %v", tt.argv0, tt.args, got, tt.want)
		}
	}
}

func TestUsage(t *testing.T) {
	u := Usage()
	for _, want := range []string{"Usage: consul-template [options]", "-consul-addr=<address>", "-template=<template>",
		"-v, -version", "-backend=<name>", "-node=<address>", "-services-prefix", "-file=<path>", "-noop",
		"-metrics-addr", "-confdir", "check_command", "check_timeout"} {
		if !strings.Contains(u, want) {
			t.Errorf("Usage lacks %q", want)
		}
	}
}
