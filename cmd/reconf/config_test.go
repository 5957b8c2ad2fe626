package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes a config file into a temp dir and returns its path.
func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "reconf.toml", `
backend = "consul"
interval = 30
nodes = ["file-a:8500", "file-b:8500"]
prefix = "/file"
log-level = "warn"
`)
	missing := filepath.Join(t.TempDir(), "none.toml")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		backend string
		nodes   []string
		inter   int
		prefix  string
		level   string
	}{
		{name: "defaults", args: []string{"-config-file", missing},
			backend: "etcd", inter: 600, level: "info"},
		{name: "file over defaults", args: []string{"-config-file", file},
			backend: "consul", nodes: []string{"file-a:8500", "file-b:8500"}, inter: 30, prefix: "/file", level: "warn"},
		{name: "config file from env", env: map[string]string{"RECONF_CONFIG_FILE": file},
			backend: "consul", nodes: []string{"file-a:8500", "file-b:8500"}, inter: 30, prefix: "/file", level: "warn"},
		{name: "env over file", args: []string{"-config-file", file},
			env:     map[string]string{"RECONF_BACKEND": "redis", "RECONF_NODES": "env-a:6379, env-b:6379", "RECONF_INTERVAL": "45"},
			backend: "redis", nodes: []string{"env-a:6379", "env-b:6379"}, inter: 45, prefix: "/file", level: "warn"},
		{name: "flags over env", args: []string{"--config-file=" + file, "-backend", "zookeeper", "-node", "f:1", "--node", "g:2", "-interval=5"},
			env:     map[string]string{"RECONF_BACKEND": "redis", "RECONF_NODES": "env-a:6379", "RECONF_INTERVAL": "45"},
			backend: "zookeeper", nodes: []string{"f:1", "g:2"}, inter: 5, prefix: "/file", level: "warn"},
		{name: "only given flags override", args: []string{"-config-file", file, "-log-level", "debug"},
			env:     map[string]string{"RECONF_PREFIX": "/env"},
			backend: "consul", nodes: []string{"file-a:8500", "file-b:8500"}, inter: 30, prefix: "/env", level: "debug"},
		{name: "flag equal to default still overrides", args: []string{"-config-file", file, "-interval", "600", "-backend", "etcd"},
			backend: "etcd", nodes: []string{"file-a:8500", "file-b:8500"}, inter: 600, prefix: "/file", level: "warn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := resolve(tc.args, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			o := c.opts
			if o.Backend != tc.backend || o.Interval != tc.inter || o.Prefix != tc.prefix || o.LogLevel != tc.level {
				t.Errorf("got backend %q interval %d prefix %q log-level %q; want %q %d %q %q",
					o.Backend, o.Interval, o.Prefix, o.LogLevel, tc.backend, tc.inter, tc.prefix, tc.level)
			}
			if got := o.Nodes.values(); !reflect.DeepEqual(got, tc.nodes) {
				t.Errorf("nodes %q, want %q", got, tc.nodes)
			}
		})
	}
}

func TestConfdTOMLKeys(t *testing.T) {
	file := writeFile(t, "confd.toml", `
backend = "redis"
confdir = "/etc/confd"
interval = 7
noop = true
prefix = "/p"
watch = true
onetime = false
nodes = ["127.0.0.1:6379"]
scheme = "https"
srv_domain = "example.com"
srv_record = "_x._tcp.example.com"
client_cert = "/c.pem"
client_key = "/k.pem"
client_cakeys = "/ca.pem"
client_insecure = true
basic_auth = true
username = "u"
password = "pw"
auth_token = "tok"
auth_type = "app-role"
app_id = "a"
user_id = "uid"
role_id = "r"
secret_id = "s"
path = "/mnt"
separator = ":"
file = ["/a.yaml", "/b.yaml"]
filter = "*.yaml"
sync_only = true
log_level = "debug"
keep_stage_file = true
`)
	c, err := resolve([]string{"-config-file", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.warnings) != 0 {
		t.Errorf("warnings for confd keys: %q", c.warnings)
	}
	o := c.opts
	want := options{
		ConfDir: "/etc/confd", ConfigFile: file, Backend: "redis", Interval: 7, Noop: true, Prefix: "/p",
		Watch: true, SyncOnly: true, KeepStageFile: true, LogLevel: "debug", LogFormat: "text",
		CheckTimeout: defaultTimeout, ReloadTimeout: defaultTimeout, MinInterval: 200 * time.Millisecond,
		Scheme: "https", SRVDomain: "example.com", SRVRecord: "_x._tcp.example.com",
		ClientCert: "/c.pem", ClientKey: "/k.pem", ClientCAKeys: "/ca.pem", ClientInsecure: true,
		BasicAuth: true, Username: "u", Password: "pw", AuthToken: "tok", AuthType: "app-role",
		AppID: "a", UserID: "uid", RoleID: "r", SecretID: "s", Path: "/mnt", Separator: ":",
		Filter: "*.yaml", ServicesPrefix: "/services",
	}
	if got, w := o.Nodes.values(), []string{"127.0.0.1:6379"}; !reflect.DeepEqual(got, w) {
		t.Errorf("nodes %q, want %q", got, w)
	}
	if got, w := o.Files.values(), []string{"/a.yaml", "/b.yaml"}; !reflect.DeepEqual(got, w) {
		t.Errorf("file %q, want %q", got, w)
	}
	o.Nodes, o.Files = listValue{}, listValue{}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("options\n got %+v\nwant %+v", o, want)
	}
}

func TestBothSpellings(t *testing.T) {
	for _, body := range []string{
		"sync-only = true\nlog-level = \"error\"\nkeep-stage-file = true\ncheck-timeout = \"5s\"\nreload-timeout = 9",
		"sync_only = true\nlog_level = \"error\"\nkeep_stage_file = true\ncheck_timeout = \"5s\"\nreload_timeout = 9",
	} {
		c, err := resolve([]string{"-config-file", writeFile(t, "r.toml", body)}, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		o := c.opts
		if !o.SyncOnly || o.LogLevel != "error" || !o.KeepStageFile || o.CheckTimeout != 5*time.Second || o.ReloadTimeout != 9*time.Second {
			t.Errorf("%q: got sync-only %v log-level %q keep-stage-file %v check %v reload %v", body,
				o.SyncOnly, o.LogLevel, o.KeepStageFile, o.CheckTimeout, o.ReloadTimeout)
		}
	}
}

func TestUnknownKeyWarned(t *testing.T) {
	file := writeFile(t, "r.toml", "backend = \"etcd\"\n\nbakend = \"consul\"\n")
	c, err := resolve([]string{"-config-file", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.warnings) != 1 || !strings.Contains(c.warnings[0], file+":3") || !strings.Contains(c.warnings[0], `"bakend"`) {
		t.Errorf("warnings %q, want one naming %s:3 and \"bakend\"", c.warnings, file)
	}
}

func TestUsageErrors(t *testing.T) {
	bad := func(body string) string { return writeFile(t, "bad.toml", body) }
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"unknown flag", []string{"-bogus"}, nil, []string{"-bogus"}},
		{"bad int flag", []string{"-interval", "ten"}, nil, []string{"-interval"}},
		{"stray argument", []string{"onetime"}, nil, []string{`"onetime"`}},
		{"bad log level", []string{"-log-level", "loud"}, nil, []string{"-log-level", "loud"}},
		{"bad log format", []string{"-log-format", "xml"}, nil, []string{"-log-format", "xml"}},
		{"zero interval", []string{"-interval", "0"}, nil, []string{"-interval"}},
		{"bad scheme", []string{"-scheme", "ftp"}, nil, []string{"-scheme"}},
		{"negative probe interval", []string{"-probe-interval", "-1s"}, nil, []string{"-probe-interval", "negative"}},
		{"negative probe interval in file", []string{"-config-file", bad("probe_interval = \"-2s\"\n")}, nil, []string{"-probe-interval", "bad.toml", "negative"}},
		{"bad env int", nil, map[string]string{"RECONF_INTERVAL": "soon"}, []string{"RECONF_INTERVAL", "soon"}},
		{"bad env bool", nil, map[string]string{"RECONF_ONETIME": "maybe"}, []string{"RECONF_ONETIME"}},
		{"bad level from env names it", nil, map[string]string{"RECONF_LOG_LEVEL": "loud"}, []string{"RECONF_LOG_LEVEL"}},
		{"malformed file", []string{"-config-file", bad("backend = \"etcd\"\ninterval = = 3\n")}, nil, []string{"bad.toml:2"}},
		{"type error in file", []string{"-config-file", bad("\ninterval = \"ten\"\n")}, nil, []string{"bad.toml:2", `"interval"`, "integer"}},
		{"bool as string in file", []string{"-config-file", bad("onetime = \"true\"\n")}, nil, []string{"bad.toml:1", "boolean"}},
		{"bad level in file", []string{"-config-file", bad("log_level = \"loud\"\n")}, nil, []string{"bad.toml:1", "log-level"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve(tc.args, env(tc.env))
			if !errors.Is(err, errUsage) {
				t.Fatalf("err %v, want errUsage", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestMissingConfigFileIsFine(t *testing.T) {
	c, err := resolve([]string{"-config-file", filepath.Join(t.TempDir(), "nope.toml")}, env(nil))
	if err != nil || c.opts.Backend != "etcd" {
		t.Fatalf("got %v, %v", c, err)
	}
}

func TestSecretsRedacted(t *testing.T) {
	file := writeFile(t, "r.toml", `password = "file-secret"`)
	c, err := resolve([]string{"-config-file", file, "-backend", "redis", "-client-key", "flag-secret",
		"-node", "redis://u:node-secret@h:6379"},
		env(map[string]string{"RECONF_AUTH_TOKEN": "env-secret", "RECONF_SECRET_ID": "sid-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logEffective(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), c)
	out := buf.String()
	if !strings.Contains(out, `backend="redis (-backend)"`) || !strings.Contains(out, redacted) {
		t.Fatalf("log lacks the config or the redaction marker: %s", out)
	}
	for _, s := range []string{"file-secret", "flag-secret", "env-secret", "sid-secret", "node-secret"} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q logged: %s", s, out)
		}
	}
}

// A config file line that sets a secret and cannot be parsed is named, not quoted: the TOML
// parser's message echoes what it read ("expected value but found \"hunter\" instead").
func TestFileParseErrorHidesSecret(t *testing.T) {
	for _, body := range []string{"backend = \"redis\"\npassword = sekritpw\n", "'auth_token' = sekritpw\n",
		"client_key = sekritpw\n", "secret_id = sekritpw\n"} {
		file := writeFile(t, "bad.toml", body)
		_, err := resolve([]string{"-config-file", file}, env(nil))
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", body, err)
			continue
		}
		if strings.Contains(err.Error(), "sekrit") {
			t.Errorf("%q: the error shows the secret: %v", body, err)
		}
		if !strings.Contains(err.Error(), file+":") {
			t.Errorf("%q: the error does not name the file and line: %v", body, err)
		}
	}
	// Other keys keep the parser's message.
	_, err := resolve([]string{"-config-file", writeFile(t, "bad.toml", "prefix = oops\n")}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("non-secret key: %v, want the parser's message", err)
	}
}

func TestLevels(t *testing.T) {
	for in, want := range map[string]slog.Level{"panic": levelFatal, "fatal": levelFatal, "error": slog.LevelError,
		"warn": slog.LevelWarn, "warning": slog.LevelWarn, "info": slog.LevelInfo, "debug": slog.LevelDebug, "DEBUG": slog.LevelDebug} {
		if got, err := parseLevel(in); err != nil || got != want {
			t.Errorf("parseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestFlagSetComplete(t *testing.T) {
	// Every confd flag exists, with confd's default (ours for confdir/config-file).
	fs := newFlagSet(&options{})
	want := map[string]string{
		"backend": "etcd", "confdir": "/etc/reconf", "config-file": "/etc/reconf/reconf.toml", "interval": "600",
		"log-level": "info", "scheme": "http", "separator": "/", "filter": "*", "onetime": "false",
		"watch": "false", "noop": "false", "sync-only": "false", "keep-stage-file": "false", "prefix": "",
		"node": "", "file": "", "srv-domain": "", "srv-record": "", "client-cert": "", "client-key": "",
		"client-ca-keys": "", "basic-auth": "false", "username": "", "password": "", "auth-type": "",
		"auth-token": "", "app-id": "", "user-id": "", "role-id": "", "secret-id": "", "path": "",
		"version": "false", "log-format": "text", "wait": "", "metrics-addr": "", "check-timeout": "1m0s",
		"reload-timeout": "1m0s", "services-prefix": "/services", "probe-interval": "0s",
	}
	for name, def := range want {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("flag -%s missing", name)
			continue
		}
		if f.DefValue != def {
			t.Errorf("-%s default %q, want %q", name, f.DefValue, def)
		}
		if len(f.Usage) < 10 {
			t.Errorf("-%s usage too short: %q", name, f.Usage)
		}
	}
}
