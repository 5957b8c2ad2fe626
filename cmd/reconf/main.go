package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/all" // every backend registers itself
	"github.com/reconf/reconf/discovery"
	"github.com/reconf/reconf/internal/ctcli"
	"github.com/reconf/reconf/internal/dockermounts"
	"github.com/reconf/reconf/internal/runner"
	"github.com/reconf/reconf/internal/sdnotify"
	"github.com/reconf/reconf/resource"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a resource failed (-onetime) or the backend could not be used
	exitUsage = 2 // a bad flag, variable, config file or value
)

func main() {
	if ctcli.IsConsulTemplate(os.Args[0], os.Args[1:]) {
		os.Exit(runConsulTemplate(os.Args[1:], os.Stdout, os.Stderr))
	}
	if code, ok := subcommand(os.Args[1:], os.Stdout, os.Stderr); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is reconf without its subcommands: it resolves the settings, builds the backend, loads
// the resources and hands them to the runner until ctx is done. It returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := resolve(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "reconf: %v\n", err)
		return exitUsage
	}
	if c.help {
		fs := newFlagSet(&options{})
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage: reconf [flags]\n       reconf register|deregister [flags]\n       reconf registrator [flags] URI   (gliderlabs/registrator's command line; -h lists them)\n"+
			"       reconf -template SRC:DEST[:CMD] [consul-template flags]   (consul-template's command line; -template -h lists them)\n\nFlags:\n")
		fs.PrintDefaults()
		return exitOK
	}
	if c.opts.Version {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	o := &c.opts
	log := newLogger(stderr, o)
	slog.SetDefault(log) // packages that fall back to slog.Default() log the same way
	for _, w := range c.warnings {
		log.Warn(w)
	}
	logEffective(log, c)

	b, err := backends.New(o.Backend, backendOptions(o))
	if err != nil {
		fmt.Fprintf(stderr, "reconf: %v\n", err)
		if errors.Is(err, backends.ErrUnknownBackend) || errors.Is(err, backends.ErrConfig) {
			return exitUsage
		}
		return exitFail
	}
	defer b.Close()
	stores, closeStores, err := openStores(c, b, log)
	if err != nil {
		fmt.Fprintf(stderr, "reconf: %v\n", err)
		if errors.Is(err, errUsage) {
			return exitUsage
		}
		return exitFail
	}
	defer closeStores()

	defaults, err := resourceDefaults(o, log)
	if err != nil {
		fmt.Fprintf(stderr, "reconf: %v\n", err)
		return exitUsage
	}
	defaults.Backends = c.storeNames()
	list, loadErr := resource.Load(defaults)
	if loadErr != nil {
		log.Error("loading template resources", "confdir", o.ConfDir, "err", loadErr)
		if len(list) == 0 && !o.Onetime {
			return exitFail
		}
	}
	if len(list) == 0 && loadErr == nil {
		log.Warn("no template resources", "dir", filepath.Join(o.ConfDir, "conf.d"))
	}
	if !o.Noop && !o.KeepStageFile {
		// A reconf killed mid-write left its stage file beside the destination.
		resource.RemoveStale(list, log)
	}

	defer useDockerMounts(getenv("DOCKER_HOST"), log)()

	cfg := runner.Config{
		Resources:     list,
		Backend:       b,
		BackendDriver: o.Backend,
		Stores:        stores,
		Defaults:      defaults,
		Onetime:       o.Onetime,
		Watch:         o.Watch,
		Interval:      time.Duration(o.Interval) * time.Second,
		Noop:          o.Noop,
		SyncOnly:      o.SyncOnly,
		KeepStageFile: o.KeepStageFile,
		MetricsAddr:   o.MetricsAddr,
		MinInterval:   minInterval(o.MinInterval),
		Log:           log,
		Reload:        reloader(args, getenv, c, log),
		Services:      discovery.New(b, discovery.Config{Prefix: o.ServicesPrefix, Log: log}),
	}
	if n := sdnotify.New(log); n.Enabled() {
		cfg.Notifier = n
	}
	err = runner.Run(ctx, cfg)
	switch {
	case err != nil && ctx.Err() != nil:
		log.Info("stopped by signal", "err", err)
		return exitOK
	case err != nil:
		log.Error("run failed", "err", err)
		return exitFail
	case loadErr != nil: // -onetime with resources that did not load
		return exitFail
	}
	return exitOK
}

// backendOptions builds what backends.New reads from the settings.
func backendOptions(o *options) backends.Options {
	return backends.Options{
		Nodes:          o.Nodes.values(),
		Scheme:         o.Scheme,
		SRVDomain:      o.SRVDomain,
		SRVRecord:      o.SRVRecord,
		ClientCert:     o.ClientCert,
		ClientKey:      o.ClientKey,
		ClientCAKeys:   o.ClientCAKeys,
		ClientInsecure: o.ClientInsecure,
		BasicAuth:      o.BasicAuth,
		Username:       o.Username,
		Password:       o.Password,
		AuthToken:      o.AuthToken,
		AuthType:       o.AuthType,
		AppID:          o.AppID,
		UserID:         o.UserID,
		RoleID:         o.RoleID,
		SecretID:       o.SecretID,
		Path:           o.Path,
		Separator:      o.Separator,
		Files:          o.Files.values(),
		Filter:         o.Filter,
		ServicesPrefix: o.ServicesPrefix,
		ProbeInterval:  o.ProbeInterval,
	}
}

// resourceDefaults builds the run-wide settings every resource inherits.
func resourceDefaults(o *options, log *slog.Logger) (resource.Defaults, error) {
	d := resource.Defaults{
		ConfDir:       o.ConfDir,
		Prefix:        o.Prefix,
		CheckTimeout:  o.CheckTimeout,
		ReloadTimeout: o.ReloadTimeout,
		Log:           log,
	}
	if o.Wait != "" {
		w, err := resource.ParseWait(o.Wait)
		if err != nil {
			return d, usagef("-wait: %v", err)
		}
		d.Wait = w
	}
	return d, nil
}

// reloader returns the SIGHUP callback: it re-reads the config file (flags and variables
// still win) and loads the resources again. Any error keeps the old set running. Settings
// that only a restart applies (backend, nodes, credentials, run modes) are logged if changed.
func reloader(args []string, getenv func(string) string, first *config, log *slog.Logger) func() ([]*resource.Resource, error) {
	return func() ([]*resource.Resource, error) {
		c, err := resolve(args, getenv)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		for _, w := range c.warnings {
			log.Warn(w)
		}
		changed := restartOnly(&first.opts, &c.opts)
		if !sameStores(first, c) {
			changed = append(changed, "backends")
		}
		if len(changed) > 0 {
			log.Warn("settings changed that apply only after a restart", "settings", changed)
		}
		d, err := resourceDefaults(&c.opts, log)
		if err != nil {
			return nil, err
		}
		d.Backends = first.storeNames() // the stores running; new ones need a restart
		list, err := resource.Load(d)
		if err != nil {
			return nil, err
		}
		return list, nil
	}
}

// minInterval maps the -min-interval flag (0: no limit) to runner.Config.MinInterval (0: the
// default, negative: no limit).
func minInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// reloadable lists the settings a SIGHUP applies; every other one needs a restart.
var reloadable = map[string]bool{
	"confdir": true, "prefix": true, "wait": true, "check-timeout": true, "reload-timeout": true,
	"config-file": true,
}

// restartOnly names the settings that differ between a and b and that a reload cannot apply
// (names only: values may be secrets).
func restartOnly(a, b *options) []string {
	var ca, cb options
	fa, fb := newFlagSet(&ca), newFlagSet(&cb) // newFlagSet sets the defaults…
	ca, cb = *a, *b                            // …so copy the values in afterwards
	var out []string
	fa.VisitAll(func(f *flag.Flag) {
		if !reloadable[f.Name] && f.Value.String() != fb.Lookup(f.Name).Value.String() {
			out = append(out, f.Name)
		}
	})
	return out
}

// useDockerMounts lets resources find the destinations that running containers bind-mount (they
// are written in place, keeping their inode), when a Docker engine is configured: host is
// $DOCKER_HOST (empty: the default socket, if it exists). It returns the func that stops it.
func useDockerMounts(host string, log *slog.Logger) func() {
	mf, err := dockermounts.New(dockermounts.Config{Host: host, Log: log})
	if err != nil {
		log.Warn("docker engine: bind-mounted destinations are not detected", "err", err)
		return func() {}
	}
	if mf == nil {
		return func() {}
	}
	resource.SetMountFinder(mf)
	return func() {
		resource.SetMountFinder(nil)
		_ = mf.Close()
	}
}
