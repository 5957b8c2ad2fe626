package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ctconfig "github.com/hashicorp/consul-template/config"
	dep "github.com/hashicorp/consul-template/dependency"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/discovery"
	"github.com/reconf/reconf/internal/ctcli"
	"github.com/reconf/reconf/internal/runner"
	"github.com/reconf/reconf/internal/sdnotify"
	"github.com/reconf/reconf/resource"
	"github.com/reconf/reconf/resource/ctres"
	"github.com/reconf/reconf/template/ct"
)

// ctResourceName names the resource that holds every consul-template template (in logs and
// metrics).
const ctResourceName = "consul-template"

// runConsulTemplate is reconf driven exactly as consul-template is: its flags and config files,
// its exit codes (0; 12 after the kill signal; 13 bad flag; 14 template, command or runner
// error; 15 bad config), SIGHUP (its reload_signal) reloads, SIGINT (its kill_signal) stops.
// SIGTERM stops gracefully too (consul-template ignores it; see the README).
func runConsulTemplate(args []string, stdout, stderr io.Writer) int {
	s, err := ctcli.Parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, ctcli.Usage())
			return ctcli.ExitCodeOK
		}
		fmt.Fprintln(stderr, err.Error())
		return ctcli.ExitCode(err)
	}
	if s.Help {
		fmt.Fprint(stdout, ctcli.Usage())
		return ctcli.ExitCodeOK
	}
	if s.Version {
		fmt.Fprintln(stdout, versionString())
		return ctcli.ExitCodeOK
	}
	log := ctLogger(stderr, ctconfig.StringVal(s.Config.LogLevel))
	slog.SetDefault(log)
	// consul-template's queries log their traffic through the standard logger at TRACE.
	stdlog.SetOutput(io.Discard)

	b, err := backends.New(s.Backend, ctBackendOptions(s))
	if err != nil {
		log.Error("backend", "err", err)
		if errors.Is(err, backends.ErrUnknownBackend) || errors.Is(err, backends.ErrConfig) {
			return ctcli.ExitCodeConfigError
		}
		return ctcli.ExitCodeRunnerError
	}
	defer b.Close()
	defer useDockerMounts(os.Getenv("DOCKER_HOST"), log)()
	store := ct.Store{
		Services: discovery.New(b, discovery.Config{Prefix: s.ServicesPrefix, Log: log}),
		Env:      ctChildEnv(s.Config),
	}
	if s.Backend == "consul" {
		cs := dep.NewClientSet()
		in := ctConsulInput(s.Config.Consul)
		if len(s.Nodes) > 0 {
			in.Address = s.Nodes[0] // -node, when given, wins over consul { address }, as for keys
		}
		if err := cs.CreateConsulClient(in); err != nil {
			log.Error("consul client", "err", err)
			return ctcli.ExitCodeRunnerError
		}
		store.Consul = cs
	}
	set, err := ctSet(s, store, stdout, stderr, log)
	if err != nil {
		log.Error("templates", "err", err)
		return ctcli.ExitCodeRunnerError
	}
	if s.ParseOnly {
		return ctcli.ExitCodeOK
	}
	// consul-template makes its Vault client, unwraps and starts renewing the token at start.
	if store.Vault, err = ct.NewVault(s.Config.Vault, s.Config.Once, log); err != nil {
		log.Error("vault", "err", err)
		return ctcli.ExitCodeRunnerError
	}
	defer store.Vault.Stop()
	set.Store.Vault = store.Vault
	if pf := ctconfig.StringVal(s.Config.PidFile); pf != "" {
		if err := os.WriteFile(pf, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			log.Error("pid file", "err", err)
			return ctcli.ExitCodeRunnerError
		}
		defer os.Remove(pf)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := ctcli.ExitCodeOK
	finish := func(c int) {
		code = c
		cancel()
	}
	exec := newCTExec(s.Config, stdout, stderr, log, finish)
	defer exec.stop()
	res := set.Resource(ctResourceName)
	res.Wait = ctWait(s.Config.Wait)
	list, err := ctConfD(s, log)
	if err != nil {
		log.Error("loading template resources", "confdir", s.ConfDir, "err", err)
		return ctcli.ExitCodeConfigError
	}
	once := &onceTracker{want: 1 + len(list), seen: map[string]bool{}}
	cfg := runner.Config{
		Resources:   append([]*resource.Resource{res}, list...),
		Backend:     b,
		Watch:       true,
		Noop:        s.Noop,
		MetricsAddr: s.MetricsAddr,
		Log:         log,
		Services:    store.Services,
		OnSync: func(r *resource.Resource, out resource.Result, err error) {
			if r.Name != ctResourceName {
				if err == nil && s.Config.Once && once.synced(r.Name) {
					finish(ctcli.ExitCodeOK)
				}
				return
			}
			switch {
			case err == nil && exec != nil:
				if err := exec.rendered(out.Written); err != nil {
					log.Error("exec", "err", err)
					finish(ctcli.ExitCodeRunnerError)
				}
			case err == nil && s.Config.Once:
				if once.synced(r.Name) {
					finish(ctcli.ExitCodeOK)
				}
			case errors.Is(err, ctres.ErrCommand), errors.Is(err, ctres.ErrTemplate):
				log.Error("stopping", "err", err)
				finish(ctcli.ExitCodeRunnerError)
			}
		},
		Reload: func() ([]*resource.Resource, error) {
			s2, err := ctcli.Parse(args)
			if err != nil {
				return nil, err
			}
			set2, err := ctSet(s2, store, stdout, stderr, log)
			if err != nil {
				return nil, err
			}
			r2 := set2.Resource(ctResourceName)
			r2.Wait = ctWait(s2.Config.Wait)
			list2, err := ctConfD(s2, log)
			if err != nil {
				return nil, err
			}
			return append([]*resource.Resource{r2}, list2...), nil
		},
	}
	if n := sdnotify.New(log); n.Enabled() {
		cfg.Notifier = n
	}
	r, err := runner.New(cfg)
	if err != nil {
		log.Error("runner", "err", err)
		return ctcli.ExitCodeRunnerError
	}

	sigs := make(chan os.Signal, 4)
	kill := ctconfig.SignalVal(s.Config.KillSignal)
	reload := ctconfig.SignalVal(s.Config.ReloadSignal)
	watched := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	for _, sig := range []os.Signal{kill, reload} {
		if sig != nil {
			watched = append(watched, sig)
		}
	}
	signal.Notify(sigs, watched...)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				switch {
				case reload != nil && sig == reload:
					fmt.Fprintf(stderr, "Reloading configuration...\n")
					_ = r.Reload(ctx)
				case sig == kill || sig == syscall.SIGINT || sig == syscall.SIGTERM:
					fmt.Fprintf(stderr, "Cleaning up...\n")
					finish(ctcli.ExitCodeInterrupt)
					return
				}
			}
		}
	}()
	go ctWatchFiles(ctx, func() []string { return set.Files() }, func() { r.Kick(ctResourceName) })
	go func() {
		// Vault cannot be watched: its answers (per lease) kick the templates.
		if err := store.Vault.Run(ctx, func() { r.Kick(ctResourceName) }); err != nil {
			log.Error("vault", "err", err)
			finish(ctcli.ExitCodeRunnerError)
		}
	}()
	if err := r.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("run failed", "err", err)
		return ctcli.ExitCodeRunnerError
	}
	return code
}

// ctFilePoll is how often the files templates read with `file` are checked for changes
// (consul-template polls them too).
const ctFilePoll = time.Second

// ctWatchFiles kicks the templates when a file they read changes (size, mode, mtime) or
// appears or disappears, until ctx ends.
func ctWatchFiles(ctx context.Context, files func() []string, kick func()) {
	seen := map[string]string{}
	t := time.NewTicker(ctFilePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed := false
		now := map[string]string{}
		for _, f := range files() {
			st := "missing"
			if fi, err := os.Stat(f); err == nil {
				st = fmt.Sprint(fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
			}
			now[f] = st
			if old, ok := seen[f]; ok && old != st {
				changed = true
			}
		}
		seen = now
		if changed {
			kick()
		}
	}
}

// ctSet builds the consul-template templates of s as one resource set.
func ctSet(s *ctcli.Settings, store ct.Store, stdout, stderr io.Writer, log *slog.Logger) (*ctres.Set, error) {
	set := &ctres.Set{
		Store: store, Once: s.Config.Once, Dry: s.Dry, Out: stdout, Err: stderr,
		CommandEnv: ctChildEnv(s.Config), Log: log,
	}
	for _, tc := range s.Templates {
		c := tc.TemplateConfig
		t, err := ct.New(ct.Config{
			Source:           ctconfig.StringVal(c.Source),
			Contents:         ctconfig.StringVal(c.Contents),
			Destination:      ctconfig.StringVal(c.Destination),
			LeftDelim:        delim(c.LeftDelim, s.Config.DefaultDelims, true),
			RightDelim:       delim(c.RightDelim, s.Config.DefaultDelims, false),
			ErrMissingKey:    ctconfig.BoolVal(c.ErrMissingKey),
			SandboxPath:      ctconfig.StringVal(c.SandboxPath),
			FunctionDenylist: c.FunctionDenylist,
		})
		if err != nil {
			return nil, err
		}
		res := &resource.Resource{
			Name:         c.Display(),
			Dest:         ctconfig.StringVal(c.Destination),
			UID:          -1,
			GID:          -1,
			CheckCmd:     tc.CheckCommand,
			CheckTimeout: tc.CheckTimeout,
		}
		if c.Perms != nil && *c.Perms != 0 {
			res.Mode, res.ModeSet = *c.Perms, true
		}
		if res.UID, res.GID, err = ctOwner(c); err != nil {
			return nil, fmt.Errorf("%s: %w", c.Display(), err)
		}
		var cmd []string
		var timeout = ctconfig.TimeDurationVal(c.CommandTimeout)
		if c.Exec != nil {
			cmd = []string(c.Exec.Command)
			if c.Exec.Timeout != nil {
				timeout = *c.Exec.Timeout
			}
		}
		set.Templates = append(set.Templates, &ctres.Template{
			T: t, Res: res, Command: cmd, CommandTimeout: timeout,
			Backup: ctconfig.BoolVal(c.Backup), CreateDestDirs: ctconfig.BoolVal(c.CreateDestDirs),
			Display: c.Display(), NotFatal: c.ErrFatal != nil && !*c.ErrFatal,
		})
	}
	return set, nil
}

// onceTracker counts the resources that synced successfully, for -once with -confdir: reconf
// exits once every one has.
type onceTracker struct {
	mu   sync.Mutex
	want int
	seen map[string]bool
}

// synced records name and reports whether every resource has now synced.
func (o *onceTracker) synced(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen[name] = true
	return len(o.seen) >= o.want
}

// ctConfD loads confd-style conf.d resources from -confdir, to run beside the
// consul-template templates in one process ("" loads none).
func ctConfD(s *ctcli.Settings, log *slog.Logger) ([]*resource.Resource, error) {
	if s.ConfDir == "" {
		return nil, nil
	}
	return resource.Load(resource.Defaults{ConfDir: s.ConfDir, Log: log})
}

// delim is a template's delimiter, else default_delimiters' (as consul-template's runner
// picks them).
func delim(own *string, def *ctconfig.DefaultDelims, left bool) string {
	if d := ctconfig.StringVal(own); d != "" || def == nil {
		return d
	}
	if left {
		return ctconfig.StringVal(def.Left)
	}
	return ctconfig.StringVal(def.Right)
}

// ctOwner resolves a template's user/uid and group/gid (-1: unset).
func ctOwner(c *ctconfig.TemplateConfig) (uid, gid int, err error) {
	uid, gid = -1, -1
	if c.Uid != nil {
		uid = *c.Uid
	} else if u := ctconfig.StringVal(c.User); u != "" {
		lu, err := user.Lookup(u)
		if err != nil {
			if lu, err = user.LookupId(u); err != nil {
				return 0, 0, fmt.Errorf("failed looking up user: %w", err)
			}
		}
		uid, _ = strconv.Atoi(lu.Uid)
	}
	if c.Gid != nil {
		gid = *c.Gid
	} else if g := ctconfig.StringVal(c.Group); g != "" {
		lg, err := user.LookupGroup(g)
		if err != nil {
			if lg, err = user.LookupGroupId(g); err != nil {
				return 0, 0, fmt.Errorf("failed looking up group: %w", err)
			}
		}
		gid, _ = strconv.Atoi(lg.Gid)
	}
	return uid, gid, nil
}

// ctWait is the global wait {} as a debounce window.
func ctWait(w *ctconfig.WaitConfig) resource.Wait {
	if w == nil || !ctconfig.BoolVal(w.Enabled) {
		return resource.Wait{}
	}
	return resource.Wait{Min: ctconfig.TimeDurationVal(w.Min), Max: ctconfig.TimeDurationVal(w.Max)}
}

// ctBackendOptions maps the consul {} block (and reconf's -node/-file) to backend options.
func ctBackendOptions(s *ctcli.Settings) backends.Options {
	c := s.Config.Consul
	o := backends.Options{
		Nodes:          s.Nodes,
		Files:          s.Files,
		ServicesPrefix: s.ServicesPrefix,
	}
	if s.Backend != "consul" {
		return o
	}
	o.AuthToken = ctconfig.StringVal(c.Token)
	if c.SSL != nil && ctconfig.BoolVal(c.SSL.Enabled) {
		o.Scheme = "https"
		o.ClientCert = ctconfig.StringVal(c.SSL.Cert)
		o.ClientKey = ctconfig.StringVal(c.SSL.Key)
		o.ClientCAKeys = ctconfig.StringVal(c.SSL.CaCert)
		o.ClientInsecure = !ctconfig.BoolVal(c.SSL.Verify)
	}
	if c.Auth != nil && ctconfig.BoolVal(c.Auth.Enabled) {
		o.BasicAuth = true
		o.Username = ctconfig.StringVal(c.Auth.Username)
		o.Password = ctconfig.StringVal(c.Auth.Password)
	}
	return o
}

// ctConsulInput is consul-template's own client for its catalog and KV queries.
func ctConsulInput(c *ctconfig.ConsulConfig) *dep.CreateConsulClientInput {
	in := &dep.CreateConsulClientInput{
		Address:   ctconfig.StringVal(c.Address),
		Namespace: ctconfig.StringVal(c.Namespace),
		Token:     ctconfig.StringVal(c.Token),
		TokenFile: ctconfig.StringVal(c.TokenFile),
	}
	if c.Auth != nil {
		in.AuthEnabled = ctconfig.BoolVal(c.Auth.Enabled)
		in.AuthUsername = ctconfig.StringVal(c.Auth.Username)
		in.AuthPassword = ctconfig.StringVal(c.Auth.Password)
	}
	if c.SSL != nil {
		in.SSLEnabled = ctconfig.BoolVal(c.SSL.Enabled)
		in.SSLVerify = ctconfig.BoolVal(c.SSL.Verify)
		in.SSLCert = ctconfig.StringVal(c.SSL.Cert)
		in.SSLKey = ctconfig.StringVal(c.SSL.Key)
		in.SSLCACert = ctconfig.StringVal(c.SSL.CaCert)
		in.SSLCAPath = ctconfig.StringVal(c.SSL.CaPath)
		in.ServerName = ctconfig.StringVal(c.SSL.ServerName)
	}
	return in
}

// ctChildEnv is the environment consul-template adds for templates' `env` and for commands.
func ctChildEnv(c *ctconfig.Config) []string {
	var env []string
	add := func(k, v string) { env = append(env, k+"="+v) }
	cc := c.Consul
	if cc != nil {
		if a := ctconfig.StringVal(cc.Address); a != "" {
			add("CONSUL_HTTP_ADDR", a)
		}
		if cc.Auth != nil && ctconfig.BoolVal(cc.Auth.Enabled) {
			add("CONSUL_HTTP_AUTH", cc.Auth.String())
		}
		if t := ctconfig.StringVal(cc.Token); t != "" {
			add("CONSUL_HTTP_TOKEN", t)
		}
		if t := ctconfig.StringVal(cc.TokenFile); t != "" {
			add("CONSUL_HTTP_TOKEN_FILE", t)
		}
		if cc.SSL != nil {
			add("CONSUL_HTTP_SSL", strconv.FormatBool(ctconfig.BoolVal(cc.SSL.Enabled)))
			add("CONSUL_HTTP_SSL_VERIFY", strconv.FormatBool(ctconfig.BoolVal(cc.SSL.Verify)))
		}
	}
	return append(env, ctVaultEnv(c.Vault)...)
}

// ctLogger logs at consul-template's level names (trace, debug, info, warn, err).
func ctLogger(w io.Writer, level string) *slog.Logger {
	l := slog.LevelWarn
	switch strings.ToLower(level) {
	case "trace", "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "err", "error":
		l = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// ctVaultEnv is the Vault part of consul-template's child environment (runner.go childEnv).
func ctVaultEnv(v *ctconfig.VaultConfig) []string {
	if v == nil {
		return nil
	}
	var env []string
	add := func(k string, p *string) {
		if ctconfig.StringPresent(p) {
			env = append(env, k+"="+*p)
		}
	}
	add("VAULT_ADDR", v.Address)
	if v.SSL != nil {
		if !ctconfig.BoolVal(v.SSL.Verify) {
			env = append(env, "VAULT_SKIP_VERIFY=true")
		}
		add("VAULT_CLIENT_CERT", v.SSL.Cert)
		add("VAULT_CLIENT_KEY", v.SSL.Key)
		add("VAULT_CAPATH", v.SSL.CaPath)
		add("VAULT_CACERT", v.SSL.CaCert)
		add("VAULT_CACERT_BYTES", v.SSL.CaCertBytes)
		add("VAULT_TLS_SERVER_NAME", v.SSL.ServerName)
	}
	return env
}
