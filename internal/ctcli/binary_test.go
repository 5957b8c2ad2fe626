package ctcli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul-template/config"

	"github.com/reconf/reconf/internal/testservers"
)

// runCT runs the binary (stopped by pid past 20 s, which fails the test) in dir, with env
// added to an environment free of the machine's CONSUL_*, VAULT_*, NOMAD_* and CT_* variables.
func runCT(t *testing.T, bin, dir string, env []string, args ...string) testservers.ConsulTemplateResult {
	t.Helper()
	const timeout = 20 * time.Second
	r := testservers.ConsulTemplateCmd{Binary: bin, Dir: dir, Env: env, Args: args, Timeout: timeout}.Run(t)
	if r.TimedOut {
		t.Fatalf("consul-template %q: still running after %v\n%s", args, timeout, r.Stderr)
	}
	return r
}

// setEnv gives this process exactly env of consul-template's variables.
func setEnv(t *testing.T, env []string) {
	t.Helper()
	cleanEnv(t)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// TestAgainstConsulTemplate resolves command lines with Parse and with the real binary
// (-parse-only, its debug log prints its final config as JSON) and compares the two configs.
func TestAgainstConsulTemplate(t *testing.T) {
	bin := testservers.ConsulTemplateBinary(t)
	dir := t.TempDir()
	tpl := write(t, dir, "in.tpl", "plain\n")
	out := func(n string) string { return filepath.Join(dir, "out", n) }
	tokenFile := write(t, dir, "agent-token", "s.agent\n")
	a := write(t, dir, "a.hcl", fmt.Sprintf(`
consul {
  address = "a:8500"
  token   = "a-token"
  retry {
    attempts = 3
    backoff  = "1s"
  }
  ssl { verify = false }
}
max_stale = "5s"
template_error_fatal = false
kill_signal = "SIGTERM"
template {
  source      = %q
  destination = %q
  command     = "echo a"
  perms       = 0600
  wait {
    min = "1s"
    max = "2s"
  }
}
`, tpl, out("a")))
	b := write(t, dir, "b.json", fmt.Sprintf(`{
  "consul": {"address": "b:8500", "transport": {"dial_timeout": "3s"}},
  "wait": {"min": "2s"},
  "exec": {"command": ["true"], "env": {"custom": ["A=1"]}},
  "template": [{"source": %q, "destination": %q, "error_fatal": true, "backup": true}]
}`, tpl, out("b")))
	folder := filepath.Join(dir, "conf.d")
	write(t, folder, "2.hcl", fmt.Sprintf(`template {
  source = %q
  destination = %q
}
pid_file = %q`, tpl, out("f2"), filepath.Join(dir, "ct.pid")))
	write(t, folder, "1.hcl", fmt.Sprintf(`template {
  contents = "x"
  destination = %q
  left_delimiter = "[["
}
log_level = "info"
deduplicate { prefix = "d/" }`, out("f1")))
	write(t, folder, "sub/0.hcl", `vault { renew_token = false }
syslog { enabled = false }
block_query_wait = "10s"
err_on_failed_lookup = true`)
	// The same as a.hcl with reconf's extension keys: consul-template reads a.hcl, Parse this.
	aExt := write(t, dir, "a-ext.hcl", strings.Replace(mustRead(t, a), `command     = "echo a"`,
		"command     = \"echo a\"\n  check_command = \"test -s $1\"\n  check_timeout = \"3s\"", 1))

	// The binary does what the flags say: it loads TLS files, unwraps tokens, opens the log file
	// and connects to syslog. So the comparison leaves out -consul-ssl-{ca-cert,ca-path,cert,key},
	// -vault-unwrap-token and -syslog* (TestFlags covers them), and gives -log-file a folder.
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)

	tests := []struct {
		name string
		args []string
		env  []string
		ours []string // Parse's args when they differ from the binary's
	}{
		{name: "defaults"},
		{name: "once", args: []string{"-once", "-wait=3s"}},
		{name: "consul flags", args: []string{"-consul-addr=1.2.3.4:8501", "-consul-auth=u:p", "-consul-retry=false",
			"-consul-retry-attempts=3", "-consul-retry-backoff=2s", "-consul-retry-max-backoff=3m", "-consul-ssl",
			"-consul-ssl-server-name=sn", "-consul-ssl-verify=false", "-consul-token=tok", "-consul-token-file=" + tokenFile,
			"-consul-transport-dial-keep-alive=7s", "-consul-transport-dial-timeout=8s",
			"-consul-transport-disable-keep-alives", "-consul-transport-max-idle-conns-per-host=9",
			"-consul-transport-tls-handshake-timeout=11s"}},
		{name: "retry", args: []string{"-retry=9s", "-consul-retry-max-backoff=0s"}},
		{name: "exec flags", args: []string{"-exec=true", "-exec-kill-signal=SIGUSR1", "-exec-kill-timeout=5s",
			"-exec-reload-signal=SIGUSR2", "-exec-splay=3s", "-exec-env-pristine", "-exec-env-custom=A=1",
			"-exec-env-custom=B=2", "-exec-env-allowlist=PATH", "-exec-env-denylist=SECRET*"}},
		{name: "vault flags", args: []string{"-vault-addr=http://127.0.0.1:1", "-vault-renew-token=false", "-vault-retry=false",
			"-vault-retry-attempts=4", "-vault-retry-backoff=1s", "-vault-retry-max-backoff=2m", "-vault-client-user-agent=ua",
			"-vault-ssl=false", "-vault-ssl-ca-cert=vca", "-vault-ssl-ca-path=/vcas", "-vault-ssl-cert=vc", "-vault-ssl-key=vk",
			"-vault-ssl-server-name=vsn", "-vault-ssl-verify=false", "-vault-transport-dial-keep-alive=1s",
			"-vault-transport-dial-timeout=2s", "-vault-transport-disable-keep-alives",
			"-vault-transport-max-idle-conns-per-host=5", "-vault-transport-max-conns-per-host=6",
			"-vault-transport-tls-handshake-timeout=3s", "-vault-agent-token-file=" + tokenFile,
			"-vault-default-lease-duration=1m"}},
		{name: "misc flags", args: []string{"-kill-signal=SIGTERM", "-reload-signal=SIGUSR1", "-pid-file=" + filepath.Join(dir, "p.pid"),
			"-max-stale=10s", "-log-file=" + filepath.Join(dir, "logs") + "/", "-log-rotate-bytes=100",
			"-log-rotate-duration=1h", "-log-rotate-max-files=3", "-wait=1s:3s", "-default-left-delimiter=[[",
			"-default-right-delimiter=]]", "-template-error-fatal=false",
			"-template=" + tpl + ":" + out("t1") + ":echo one:two", "--template", tpl + ":" + out("t2")}},
		{name: "files in order, flags on top", args: []string{"-config", a, "-config=" + folder, "-template", tpl + ":" + out("flag"),
			"-config", b, "-consul-addr=flag:8500", "-template-error-fatal=true"}},
		{name: "folder", args: []string{"-config", folder}},
		{name: "extension keys", args: []string{"-config", a, "-config", b}, ours: []string{"-config", aExt, "-config", b}},
		{name: "env", env: []string{"CONSUL_HTTP_ADDR=env:8500", "CONSUL_HTTP_TOKEN=envtok", "CONSUL_NAMESPACE=ns",
			"VAULT_ADDR=http://127.0.0.1:1", "VAULT_TOKEN=vt", "VAULT_SKIP_VERIFY=true", "NOMAD_ADDR=http://n:4646",
			"CT_LOCAL_CONFIG=max_stale = \"9s\"\nconsul { token = \"local\" }"}},
		{name: "env under files and flags", args: []string{"-config", a, "-vault-addr=http://127.0.0.1:2"},
			env: []string{"CONSUL_HTTP_ADDR=env:8500", "VAULT_ADDR=http://127.0.0.1:1", "CT_LOCAL_CONFIG=pid_file = \"/local.pid\""}},
	}
	finalRe := regexp.MustCompile(`\(runner\) final config: (\{.*\})`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{}, tt.args...), "-parse-only", "-log-level=debug")
			r := runCT(t, bin, dir, tt.env, args...)
			m := finalRe.FindStringSubmatch(r.Stderr)
			if r.Exit != 0 || m == nil {
				t.Fatalf("consul-template %q: exit %d, no final config\n%s", args, r.Exit, r.Stderr)
			}

			setEnv(t, tt.env)
			ours := args
			if tt.ours != nil {
				ours = append(append([]string{}, tt.ours...), "-parse-only", "-log-level=debug")
			}
			s, err := Parse(ours)
			if err != nil {
				t.Fatalf("Parse(%q): %v", ours, err)
			}
			// What the runner logs: config.DefaultConfig().Merge(c), finalized.
			c := config.DefaultConfig().Merge(s.Config)
			c.Finalize()
			js, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			json.Unmarshal([]byte(m[1]), &want)
			json.Unmarshal(js, &got)
			if diffs := diff("", got, want); len(diffs) > 0 {
				t.Errorf("Parse(%q) differs from consul-template:\n%s", ours, strings.Join(diffs, "\n"))
			}
		})
	}
}

// diff lists the paths where got and want (decoded JSON) differ.
func diff(path string, got, want any) []string {
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if gok && wok {
		keys := map[string]bool{}
		for k := range gm {
			keys[k] = true
		}
		for k := range wm {
			keys[k] = true
		}
		var ks []string
		for k := range keys {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var r []string
		for _, k := range ks {
			r = append(r, diff(path+"."+k, gm[k], wm[k])...)
		}
		return r
	}
	gl, gok := got.([]any)
	wl, wok := want.([]any)
	if gok && wok && len(gl) == len(wl) {
		var r []string
		for i := range gl {
			r = append(r, diff(fmt.Sprintf("%s[%d]", path, i), gl[i], wl[i])...)
		}
		return r
	}
	if !reflect.DeepEqual(got, want) {
		return []string{fmt.Sprintf("%s: got %v, consul-template %v", path, got, want)}
	}
	return nil
}

// TestErrorsAgainstConsulTemplate: bad command lines and configs give consul-template's exit
// code and error text.
func TestErrorsAgainstConsulTemplate(t *testing.T) {
	bin := testservers.ConsulTemplateBinary(t)
	dir := t.TempDir()
	unknown := write(t, dir, "unknown.hcl", "foo = 1\n")
	nested := write(t, dir, "nested.hcl", "consul {\n  retry { tries = 3 }\n}\n")
	malformed := write(t, dir, "malformed.hcl", "consul {\n address = \n")
	// HCL's JSON parser lets much malformed JSON through (`{"consul": {"address": }` reads as
	// no config at all, in consul-template as here); this it rejects.
	badJSON := write(t, dir, "bad.json", `{"a" 1}`)
	badType := write(t, dir, "badtype.hcl", `max_stale = "soon"`)
	badTpl := write(t, dir, "badtpl.hcl", "template {\n  source = \"a\"\n  wait = \"1s:2s:3s\"\n}\n")
	badDir := filepath.Join(dir, "baddir")
	write(t, badDir, "a.hcl", `template { source = "a" }`)
	write(t, badDir, "b.hcl", `nope = true`)
	noRead := write(t, dir, "noread.hcl", "")

	tests := [][]string{
		{"-bogus"},
		{"--bogus=1"},
		{"-err-on-failed-lookup"},
		{"-once=maybe"},
		{"-dry=x"},
		{"-template", ""},
		{"-template"},
		{"-consul-retry-attempts=x"},
		{"-consul-retry-attempts=4294967296"},
		{"-wait=1s:2s:3s"},
		{"-wait=x"},
		{"-max-stale=10"},
		{"-kill-signal=SIGNOPE"},
		{"-exec-reload-signal=nope"},
		{"-consul-auth="},
		{"-once", "extra", "args"},
		{"-config", unknown},
		{"-config", nested},
		{"-config", malformed},
		{"-config", badJSON},
		{"-config", badType},
		{"-config", badTpl},
		{"-config", badDir},
		{"-config", filepath.Join(dir, "missing.hcl")},
		{"-config", "/dev/null"},
		{"-log-level=warning"},
		{"-syslog-facility=bogus"},
		{"-version", "-config", unknown},
		{"-config", unknown, "-bogus"},
	}
	if os.Geteuid() != 0 {
		os.Chmod(noRead, 0)
		tests = append(tests, []string{"-config", noRead})
	}
	tsRe := regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[ERR\] \(cli\) `)
	for _, args := range tests {
		r := runCT(t, bin, dir, nil, args...)
		setEnv(t, nil)
		_, err := Parse(args)
		if got := ExitCode(err); got != r.Exit {
			t.Errorf("%q: exit %d, consul-template %d (%v)\n%s", args, got, r.Exit, err, r.Stderr)
			continue
		}
		if err == nil {
			continue
		}
		want := strings.TrimSuffix(r.Stderr, "\n")
		if ExitCode(err) == ExitCodeConfigError {
			loc := tsRe.FindStringIndex(want)
			if loc == nil {
				t.Errorf("%q: no [ERR] line in consul-template's output:\n%s", args, r.Stderr)
				continue
			}
			want = want[loc[1]:]
		}
		if err.Error() != want {
			t.Errorf("%q: error\n%s\nconsul-template:\n%s", args, err, want)
		}
	}
}

// TestHelpVersionAgainstConsulTemplate: -h prints the usage Usage starts with; -v and -version
// are Version; both exit 0.
func TestHelpVersionAgainstConsulTemplate(t *testing.T) {
	bin := testservers.ConsulTemplateBinary(t)
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}, {"-once", "-h", "-bogus"}} {
		r := runCT(t, bin, "", nil, args...)
		setEnv(t, nil)
		s, err := Parse(args)
		if r.Exit != 0 || err != nil || !s.Help {
			t.Errorf("%q: consul-template exit %d; Parse: %v, %+v", args, r.Exit, err, s)
		}
		if !strings.HasPrefix(Usage(), r.Stdout) || len(r.Stdout) < 100 {
			t.Errorf("%q: Usage() does not start with consul-template's usage:\n%s", args, r.Stdout)
		}
	}
	for _, args := range [][]string{{"-v"}, {"-version"}, {"--version", "-once"}} {
		r := runCT(t, bin, "", nil, args...)
		setEnv(t, nil)
		s, err := Parse(args)
		if r.Exit != 0 || err != nil || !s.Version || r.Stdout != "consul-template v0.42.1 ()\n" {
			t.Errorf("%q: consul-template exit %d stdout %q; Parse: %v, %+v", args, r.Exit, r.Stdout, err, s)
		}
	}
}
