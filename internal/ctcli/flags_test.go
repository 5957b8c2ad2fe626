package ctcli

import (
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul-template/config"
)

// TestFlags: every flag of consul-template's cli.go, and reconf's extensions, and what each
// does to the resolved settings.
func TestFlags(t *testing.T) {
	cleanEnv(t)
	tokenFile := write(t, t.TempDir(), "agent-token", "s.agent\n")

	type C = *config.Config
	str := config.StringVal
	dur := config.TimeDurationVal
	tests := []struct {
		args []string
		got  func(c C, s *Settings) any
		want any
	}{
		{[]string{"-consul-addr=1.2.3.4:8501"}, func(c C, s *Settings) any { return []any{str(c.Consul.Address), s.Nodes} }, []any{"1.2.3.4:8501", []string{"1.2.3.4:8501"}}},
		{[]string{"-consul-auth", "u:p:w"}, func(c C, s *Settings) any {
			return []any{config.BoolVal(c.Consul.Auth.Enabled), str(c.Consul.Auth.Username), str(c.Consul.Auth.Password)}
		}, []any{true, "u", "p:w"}},
		{[]string{"-consul-auth=u"}, func(c C, s *Settings) any { return []any{str(c.Consul.Auth.Username), str(c.Consul.Auth.Password)} }, []any{"u", ""}},
		{[]string{"-consul-retry=false"}, func(c C, s *Settings) any { return config.BoolVal(c.Consul.Retry.Enabled) }, false},
		{[]string{"-consul-retry-attempts=3"}, func(c C, s *Settings) any { return config.IntVal(c.Consul.Retry.Attempts) }, 3},
		{[]string{"-consul-retry-backoff=2s"}, func(c C, s *Settings) any { return dur(c.Consul.Retry.Backoff) }, 2 * time.Second},
		{[]string{"-consul-retry-max-backoff=3m"}, func(c C, s *Settings) any { return dur(c.Consul.Retry.MaxBackoff) }, 3 * time.Minute},
		{[]string{"-consul-ssl"}, func(c C, s *Settings) any { return config.BoolVal(c.Consul.SSL.Enabled) }, true},
		{[]string{"-consul-ssl-ca-cert=ca.pem"}, func(c C, s *Settings) any {
			return []any{str(c.Consul.SSL.CaCert), config.BoolVal(c.Consul.SSL.Enabled)}
		}, []any{"ca.pem", true}},
		{[]string{"-consul-ssl-ca-path=/cas"}, func(c C, s *Settings) any { return str(c.Consul.SSL.CaPath) }, "/cas"},
		{[]string{"-consul-ssl-cert=c.pem"}, func(c C, s *Settings) any { return str(c.Consul.SSL.Cert) }, "c.pem"},
		{[]string{"-consul-ssl-key=k.pem"}, func(c C, s *Settings) any { return str(c.Consul.SSL.Key) }, "k.pem"},
		{[]string{"-consul-ssl-server-name=consul.local"}, func(c C, s *Settings) any { return str(c.Consul.SSL.ServerName) }, "consul.local"},
		{[]string{"-consul-ssl-verify=false"}, func(c C, s *Settings) any { return config.BoolVal(c.Consul.SSL.Verify) }, false},
		{[]string{"-consul-token", "tok"}, func(c C, s *Settings) any { return str(c.Consul.Token) }, "tok"},
		{[]string{"-consul-token-file=/tok"}, func(c C, s *Settings) any { return str(c.Consul.TokenFile) }, "/tok"},
		{[]string{"-consul-transport-dial-keep-alive=7s"}, func(c C, s *Settings) any { return dur(c.Consul.Transport.DialKeepAlive) }, 7 * time.Second},
		{[]string{"-consul-transport-dial-timeout=8s"}, func(c C, s *Settings) any { return dur(c.Consul.Transport.DialTimeout) }, 8 * time.Second},
		{[]string{"-consul-transport-disable-keep-alives"}, func(c C, s *Settings) any { return config.BoolVal(c.Consul.Transport.DisableKeepAlives) }, true},
		{[]string{"-consul-transport-max-idle-conns-per-host=9"}, func(c C, s *Settings) any { return config.IntVal(c.Consul.Transport.MaxIdleConnsPerHost) }, 9},
		{[]string{"-consul-transport-tls-handshake-timeout=11s"}, func(c C, s *Settings) any { return dur(c.Consul.Transport.TLSHandshakeTimeout) }, 11 * time.Second},
		{[]string{"-dedup"}, func(c C, s *Settings) any { return config.BoolVal(c.Dedup.Enabled) }, true},
		{[]string{"-default-left-delimiter=[[", "-default-right-delimiter=]]"}, func(c C, s *Settings) any { return []any{str(c.DefaultDelims.Left), str(c.DefaultDelims.Right)} }, []any{"[[", "]]"}},
		{[]string{"-dry"}, func(c C, s *Settings) any { return s.Dry }, true},
		{[]string{"-exec", "app -x"}, func(c C, s *Settings) any { return []any{config.BoolVal(c.Exec.Enabled), []string(c.Exec.Command)} }, []any{true, []string{"app -x"}}},
		{[]string{"-exec-kill-signal=SIGUSR1"}, func(c C, s *Settings) any { return config.SignalVal(c.Exec.KillSignal) }, os.Signal(syscall.SIGUSR1)},
		{[]string{"-exec-kill-timeout=5s"}, func(c C, s *Settings) any { return dur(c.Exec.KillTimeout) }, 5 * time.Second},
		{[]string{"-exec-reload-signal=SIGUSR2"}, func(c C, s *Settings) any { return config.SignalVal(c.Exec.ReloadSignal) }, os.Signal(syscall.SIGUSR2)},
		{[]string{"-exec-splay=3s"}, func(c C, s *Settings) any { return dur(c.Exec.Splay) }, 3 * time.Second},
		{[]string{"-exec-env-pristine"}, func(c C, s *Settings) any { return config.BoolVal(c.Exec.Env.Pristine) }, true},
		{[]string{"-exec-env-custom=A=1", "-exec-env-custom=B=2"}, func(c C, s *Settings) any { return c.Exec.Env.Custom }, []string{"A=1", "B=2"}},
		{[]string{"-exec-env-allowlist=A*", "-exec-env-allowlist=B"}, func(c C, s *Settings) any { return c.Exec.Env.Allowlist }, []string{"A*", "B"}},
		{[]string{"-exec-env-denylist=SECRET*"}, func(c C, s *Settings) any { return c.Exec.Env.Denylist }, []string{"SECRET*"}},
		{[]string{"-kill-signal=SIGTERM"}, func(c C, s *Settings) any { return config.SignalVal(c.KillSignal) }, os.Signal(syscall.SIGTERM)},
		{[]string{"-log-level=debug"}, func(c C, s *Settings) any { return str(c.LogLevel) }, "debug"},
		{[]string{"-log-file=/var/log/ct.log"}, func(c C, s *Settings) any { return str(c.FileLog.LogFilePath) }, "/var/log/ct.log"},
		{[]string{"-log-rotate-bytes=100"}, func(c C, s *Settings) any { return config.IntVal(c.FileLog.LogRotateBytes) }, 100},
		{[]string{"-log-rotate-duration=1h"}, func(c C, s *Settings) any { return dur(c.FileLog.LogRotateDuration) }, time.Hour},
		{[]string{"-log-rotate-max-files=3"}, func(c C, s *Settings) any { return config.IntVal(c.FileLog.LogRotateMaxFiles) }, 3},
		{[]string{"-max-stale=10s"}, func(c C, s *Settings) any { return dur(c.MaxStale) }, 10 * time.Second},
		{[]string{"-once"}, func(c C, s *Settings) any { return []any{c.Once, config.BoolVal(c.Wait.Enabled)} }, []any{true, false}},
		{[]string{"-wait=5s", "-once"}, func(c C, s *Settings) any { return config.BoolVal(c.Wait.Enabled) }, false},
		{[]string{"-parse-only"}, func(c C, s *Settings) any { return []any{c.ParseOnly, s.ParseOnly} }, []any{true, true}},
		{[]string{"-pid-file=/run/ct.pid"}, func(c C, s *Settings) any { return str(c.PidFile) }, "/run/ct.pid"},
		{[]string{"-reload-signal=SIGUSR1"}, func(c C, s *Settings) any { return config.SignalVal(c.ReloadSignal) }, os.Signal(syscall.SIGUSR1)},
		{[]string{"-retry=9s"}, func(c C, s *Settings) any { return dur(c.Consul.Retry.Backoff) }, 9 * time.Second},
		{[]string{"-syslog"}, func(c C, s *Settings) any { return config.BoolVal(c.Syslog.Enabled) }, true},
		{[]string{"-syslog-facility=LOCAL5"}, func(c C, s *Settings) any { return str(c.Syslog.Facility) }, "LOCAL5"},
		{[]string{"-syslog-name=ct"}, func(c C, s *Settings) any { return str(c.Syslog.Name) }, "ct"},
		{[]string{"-template", "in.tpl:out.txt:service nginx reload", "-template=b.tpl:b.out"}, func(c C, s *Settings) any {
			var r []string
			for _, t := range s.Templates {
				r = append(r, str(t.Source), str(t.Destination), config.StringVal(nil)+join(t.Command))
			}
			return r
		}, []string{"in.tpl", "out.txt", "service nginx reload", "b.tpl", "b.out", ""}},
		{[]string{"-template", `C:\in.tpl:C:\out.txt`}, func(c C, s *Settings) any {
			return []string{str(s.Templates[0].Source), str(s.Templates[0].Destination)}
		}, []string{`C:\in.tpl`, `C:\out.txt`}},
		{[]string{"-template=a:b", "-template-error-fatal=false"}, func(c C, s *Settings) any { return config.BoolVal((*c.Templates)[0].ErrFatal) }, false},
		{[]string{"-vault-addr=https://v:8200"}, func(c C, s *Settings) any { return []any{str(c.Vault.Address), config.BoolVal(c.Vault.Enabled)} }, []any{"https://v:8200", true}},
		{[]string{"-vault-renew-token"}, func(c C, s *Settings) any { return config.BoolVal(c.Vault.RenewToken) }, true},
		{[]string{"-vault-retry=false"}, func(c C, s *Settings) any { return config.BoolVal(c.Vault.Retry.Enabled) }, false},
		{[]string{"-vault-retry-attempts=4"}, func(c C, s *Settings) any { return config.IntVal(c.Vault.Retry.Attempts) }, 4},
		{[]string{"-vault-retry-backoff=1s"}, func(c C, s *Settings) any { return dur(c.Vault.Retry.Backoff) }, time.Second},
		{[]string{"-vault-retry-max-backoff=2m"}, func(c C, s *Settings) any { return dur(c.Vault.Retry.MaxBackoff) }, 2 * time.Minute},
		// Accepted, and lost: consul-template's VaultConfig.Copy drops ClientUserAgent, so the
		// real binary's final config has it null too (checked in TestAgainstConsulTemplate).
		{[]string{"-vault-client-user-agent=ua"}, func(c C, s *Settings) any { return c.Vault.ClientUserAgent == nil }, true},
		{[]string{"-vault-ssl=false"}, func(c C, s *Settings) any { return config.BoolVal(c.Vault.SSL.Enabled) }, false},
		{[]string{"-vault-ssl-ca-cert=vca"}, func(c C, s *Settings) any { return str(c.Vault.SSL.CaCert) }, "vca"},
		{[]string{"-vault-ssl-ca-path=/vcas"}, func(c C, s *Settings) any { return str(c.Vault.SSL.CaPath) }, "/vcas"},
		{[]string{"-vault-ssl-cert=vc"}, func(c C, s *Settings) any { return str(c.Vault.SSL.Cert) }, "vc"},
		{[]string{"-vault-ssl-key=vk"}, func(c C, s *Settings) any { return str(c.Vault.SSL.Key) }, "vk"},
		{[]string{"-vault-ssl-server-name=vault.local"}, func(c C, s *Settings) any { return str(c.Vault.SSL.ServerName) }, "vault.local"},
		{[]string{"-vault-ssl-verify=false"}, func(c C, s *Settings) any { return config.BoolVal(c.Vault.SSL.Verify) }, false},
		{[]string{"-vault-transport-dial-keep-alive=1s"}, func(c C, s *Settings) any { return dur(c.Vault.Transport.DialKeepAlive) }, time.Second},
		{[]string{"-vault-transport-dial-timeout=2s"}, func(c C, s *Settings) any { return dur(c.Vault.Transport.DialTimeout) }, 2 * time.Second},
		{[]string{"-vault-transport-disable-keep-alives"}, func(c C, s *Settings) any { return config.BoolVal(c.Vault.Transport.DisableKeepAlives) }, true},
		{[]string{"-vault-transport-max-idle-conns-per-host=5"}, func(c C, s *Settings) any { return config.IntVal(c.Vault.Transport.MaxIdleConnsPerHost) }, 5},
		{[]string{"-vault-transport-max-conns-per-host=6"}, func(c C, s *Settings) any { return config.IntVal(c.Vault.Transport.MaxConnsPerHost) }, 6},
		{[]string{"-vault-transport-tls-handshake-timeout=3s"}, func(c C, s *Settings) any { return dur(c.Vault.Transport.TLSHandshakeTimeout) }, 3 * time.Second},
		{[]string{"-vault-token=s.tok"}, func(c C, s *Settings) any { return []any{str(c.Vault.Token), config.BoolVal(c.Vault.RenewToken)} }, []any{"s.tok", true}},
		{[]string{"-vault-agent-token-file=" + tokenFile}, func(c C, s *Settings) any {
			return []any{str(c.Vault.VaultAgentTokenFile), str(c.Vault.Token), config.BoolVal(c.Vault.RenewToken)}
		}, []any{tokenFile, "s.agent", false}},
		{[]string{"-vault-unwrap-token"}, func(c C, s *Settings) any { return config.BoolVal(c.Vault.UnwrapToken) }, true},
		{[]string{"-vault-default-lease-duration=1m"}, func(c C, s *Settings) any { return dur(c.Vault.DefaultLeaseDuration) }, time.Minute},
		{[]string{"-wait=5s"}, func(c C, s *Settings) any {
			return []any{config.BoolVal(c.Wait.Enabled), dur(c.Wait.Min), dur(c.Wait.Max)}
		}, []any{true, 5 * time.Second, 20 * time.Second}},
		{[]string{"-wait=1s:3s"}, func(c C, s *Settings) any { return []any{dur(c.Wait.Min), dur(c.Wait.Max)} }, []any{time.Second, 3 * time.Second}},
		{[]string{"-v"}, func(c C, s *Settings) any { return s.Version }, true},
		{[]string{"-version"}, func(c C, s *Settings) any { return s.Version }, true},
		{[]string{"--once", "--consul-addr", "h:1"}, func(c C, s *Settings) any { return []any{c.Once, str(c.Consul.Address)} }, []any{true, "h:1"}},
		{[]string{"-h"}, func(c C, s *Settings) any { return s.Help }, true},
		{[]string{"-once", "--help", "-bogus"}, func(c C, s *Settings) any { return s.Help }, true},

		// reconf's extensions.
		{nil, func(c C, s *Settings) any {
			return []any{s.Backend, s.Nodes, s.ServicesPrefix, s.Files, s.Noop, s.MetricsAddr, s.ConfDir, s.Dry, s.Version, s.Help, s.ParseOnly, len(s.Templates)}
		}, []any{"consul", []string{DefaultConsulNode}, "/services", []string(nil), false, "", "", false, false, false, false, 0}},
		{[]string{"-backend=etcd"}, func(c C, s *Settings) any { return []any{s.Backend, s.Nodes} }, []any{"etcd", []string(nil)}},
		{[]string{"-backend=etcdv3"}, func(c C, s *Settings) any { return s.Backend }, "etcd"},
		{[]string{"-backend=redis", "-node=r1:6379", "--node", "r2:6379"}, func(c C, s *Settings) any { return s.Nodes }, []string{"r1:6379", "r2:6379"}},
		{[]string{"-consul-addr=a:1", "-node=b:2"}, func(c C, s *Settings) any { return s.Nodes }, []string{"b:2"}},
		{[]string{"-services-prefix=/svc"}, func(c C, s *Settings) any { return s.ServicesPrefix }, "/svc"},
		{[]string{"-backend=file", "-file=a.yaml", "-file", "dir"}, func(c C, s *Settings) any { return s.Files }, []string{"a.yaml", "dir"}},
		{[]string{"-noop"}, func(c C, s *Settings) any { return s.Noop }, true},
		{[]string{"-metrics-addr=:9100"}, func(c C, s *Settings) any { return s.MetricsAddr }, ":9100"},
		{[]string{"-confdir=/etc/reconf"}, func(c C, s *Settings) any { return s.ConfDir }, "/etc/reconf"},
	}
	for _, tt := range tests {
		s := mustParse(t, tt.args...)
		if s.Config == nil {
			t.Fatalf("%q: Config is nil", tt.args)
		}
		if got := tt.got(s.Config, s); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %#v, want %#v", tt.args, got, tt.want)
		}
	}
}

func join(l []string) string {
	if len(l) == 0 {
		return ""
	}
	r := l[0]
	for _, s := range l[1:] {
		r += " " + s
	}
	return r
}

// TestDefaults: no flags at all gives consul-template's defaults, finalized.
func TestDefaults(t *testing.T) {
	cleanEnv(t)
	s := mustParse(t)
	c := s.Config
	want := config.DefaultConfig()
	want.Finalize()
	want.Finalize()
	if !sameConfig(c, want) {
		t.Errorf("defaults differ:\n got %s\nwant %s", c.GoString(), want.GoString())
	}
	if config.StringVal(c.LogLevel) != "WARN" || config.TimeDurationVal(c.MaxStale) != 2*time.Second ||
		config.SignalVal(c.ReloadSignal) != syscall.SIGHUP || config.SignalVal(c.KillSignal) != syscall.SIGINT {
		t.Errorf("defaults: log %q max_stale %v reload %v kill %v", config.StringVal(c.LogLevel),
			config.TimeDurationVal(c.MaxStale), config.SignalVal(c.ReloadSignal), config.SignalVal(c.KillSignal))
	}
}

// TestEnv: consul-template's environment variables, under files and flags.
func TestEnv(t *testing.T) {
	cleanEnv(t)
	t.Setenv("CONSUL_HTTP_ADDR", "env:8500")
	t.Setenv("CONSUL_HTTP_TOKEN", "envtok")
	t.Setenv("VAULT_ADDR", "https://envvault:8200")
	t.Setenv("CT_LOG", "info")

	s := mustParse(t)
	c := s.Config
	if got := []string{config.StringVal(c.Consul.Address), config.StringVal(c.Consul.Token), config.StringVal(c.Vault.Address), config.StringVal(c.LogLevel)}; !reflect.DeepEqual(got, []string{"env:8500", "envtok", "https://envvault:8200", "info"}) {
		t.Errorf("env: got %q", got)
	}
	if !reflect.DeepEqual(s.Nodes, []string{"env:8500"}) {
		t.Errorf("Nodes from CONSUL_HTTP_ADDR: %q", s.Nodes)
	}

	f := write(t, t.TempDir(), "c.hcl", `consul { address = "file:8500" }`)
	if got := config.StringVal(mustParse(t, "-config", f).Config.Consul.Address); got != "file:8500" {
		t.Errorf("file under env: %q", got)
	}
	if got := config.StringVal(mustParse(t, "-config", f, "-consul-addr=flag:8500").Config.Consul.Address); got != "flag:8500" {
		t.Errorf("flag over file and env: %q", got)
	}
}

// TestLocalConfig: CT_LOCAL_CONFIG merges under the flags and over the files; a bad one is a
// usage error (consul-template reads it in ParseFlags).
func TestLocalConfig(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	f := write(t, dir, "c.hcl", `
max_stale = "7s"
pid_file = "/file.pid"
template {
  source = "file.tpl"
  check_command = "check-file"
}`)
	t.Setenv("CT_LOCAL_CONFIG", `
pid_file = "/env.pid"
log_level = "info"
template {
  source = "env.tpl"
  check_command = "check-env"
}`)
	s := mustParse(t, "-config", f, "-log-level=debug", "-template=flag.tpl:out")
	c := s.Config
	if got := []any{config.TimeDurationVal(c.MaxStale), config.StringVal(c.PidFile), config.StringVal(c.LogLevel)}; !reflect.DeepEqual(got, []any{7 * time.Second, "/env.pid", "debug"}) {
		t.Errorf("got %v", got)
	}
	var got []string
	for _, tm := range s.Templates {
		got = append(got, filepath.Base(config.StringVal(tm.Source))+"|"+tm.CheckCommand)
	}
	if want := []string{"file.tpl|check-file", "env.tpl|check-env", "flag.tpl|"}; !reflect.DeepEqual(got, want) {
		t.Errorf("templates: got %q, want %q", got, want)
	}

	t.Setenv("CT_LOCAL_CONFIG", `bogus = 1`)
	_, err := Parse(nil)
	if ExitCode(err) != ExitCodeParseFlagsError {
		t.Errorf("bad CT_LOCAL_CONFIG: %v (exit %d), want exit 13", err, ExitCode(err))
	}
}
