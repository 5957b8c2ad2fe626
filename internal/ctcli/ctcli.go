package ctcli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/consul-template/config"
)

// Exit codes of consul-template v0.42.1 (cli.go).
const (
	ExitCodeOK              = 0
	ExitCodeError           = 11
	ExitCodeInterrupt       = 12
	ExitCodeParseFlagsError = 13
	ExitCodeRunnerError     = 14
	ExitCodeConfigError     = 15
)

// DefaultConsulNode is Nodes' default for the consul backend when consul-template's address
// is unset (consul-template then uses Consul's API default, the local agent).
const DefaultConsulNode = "127.0.0.1:8500"

// Backends are the values -backend takes.
var Backends = []string{"consul", "etcd", "zookeeper", "redis", "file", "env"}

// Settings is a consul-template command line resolved.
type Settings struct {
	Config    *config.Config // consul-template's config: merged and Finalize()d
	Templates []Template     // in order; Templates[i].TemplateConfig is (*Config.Templates)[i]

	// Dry is consul-template's -dry: print each changed template to stdout ("> DEST" and the
	// contents) instead of writing it. (-once and -parse-only are Config.Once and
	// Config.ParseOnly.)
	Dry bool

	// reconf's extensions, accepted beside consul-template's flags:
	Backend        string   // -backend (default "consul"): consul, etcd, zookeeper, redis, file, env
	Nodes          []string // -node, repeatable (default: from Config.Consul.Address when Backend is consul)
	ServicesPrefix string   // -services-prefix (default "/services")
	Files          []string // -file, repeatable (file backend)
	Noop           bool     // -noop: print a diff, change nothing
	MetricsAddr    string   // -metrics-addr
	ConfDir        string   // -confdir: also load confd-style conf.d resources from there ("" = none)

	// Help: -h or -help was given (consul-template prints Usage to stdout and exits 0; nothing
	// else is resolved, Config is the defaults). Version: -v or -version (consul-template
	// resolves everything, then prints its version to stdout and exits 0). ParseOnly mirrors
	// Config.ParseOnly (-parse-only: parse the templates, render nothing, exit 0).
	Help, Version, ParseOnly bool
}

// Template is one of consul-template's templates with reconf's extension keys.
type Template struct {
	*config.TemplateConfig
	CheckCommand string        // reconf extension (HCL `check_command` in a template block): run on the staged file before the swap
	CheckTimeout time.Duration // HCL `check_timeout` (0: unset)
}

// UsageError is a bad command line: consul-template prints it and exits 13. Its text is
// consul-template's (the flag package's, "cli: extra args: …", or a bad CT_LOCAL_CONFIG).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ConfigError is a configuration that cannot be loaded: consul-template logs it
// ("[ERR] (cli) " + text) and exits 15. Its text is consul-template's and names the file.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// ExitCode is consul-template's exit status for an error of Parse: 0 for nil, 13 for a
// *UsageError, 15 for a *ConfigError, 11 (ExitCodeError) for anything else.
func ExitCode(err error) int {
	var ue *UsageError
	var ce *ConfigError
	switch {
	case err == nil:
		return ExitCodeOK
	case errors.As(err, &ue):
		return ExitCodeParseFlagsError
	case errors.As(err, &ce):
		return ExitCodeConfigError
	}
	return ExitCodeError
}

// stringsVar is a repeatable string flag.
type stringsVar []string

func (s *stringsVar) String() string     { return strings.Join(*s, ",") }
func (s *stringsVar) Set(v string) error { *s = append(*s, v); return nil }

// Parse resolves a consul-template command line (args without the program name) as
// consul-template v0.42.1's cli.go does: flags (ParseFlags), then the -config paths under
// them (loadConfigs), Finalize, and the log level check of its logging setup. Errors are a
// *UsageError or a *ConfigError (see ExitCode). -h/-help is not an error: Settings.Help.
func Parse(args []string) (*Settings, error) {
	st := &cliState{}
	c := config.DefaultConfig()

	if s := os.Getenv("CT_LOCAL_CONFIG"); s != "" {
		envConfig, envExts, err := parse(s)
		if err != nil {
			return nil, &UsageError{Err: err}
		}
		c = c.Merge(envConfig)
		st.exts = append(st.exts, envExts...)
	}

	set := &Settings{}
	var nodes, files stringsVar

	flags := flag.NewFlagSet("consul-template", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.Usage = func() {}
	defineFlags(flags, c, st)

	// reconf's extensions.
	flags.StringVar(&set.Backend, "backend", "consul", "")
	flags.Var(&nodes, "node", "")
	flags.StringVar(&set.ServicesPrefix, "services-prefix", "/services", "")
	flags.Var(&files, "file", "")
	flags.BoolVar(&set.Noop, "noop", false, "")
	flags.StringVar(&set.MetricsAddr, "metrics-addr", "", "")
	flags.StringVar(&set.ConfDir, "confdir", "", "")

	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			d := config.DefaultConfig()
			d.Finalize()
			return &Settings{Config: d, Help: true, Backend: "consul", ServicesPrefix: "/services"}, nil
		}
		return nil, &UsageError{Err: err}
	}
	if rest := flags.Args(); len(rest) > 0 {
		return nil, &UsageError{Err: fmt.Errorf("cli: extra args: %q", rest)}
	}
	if set.Backend == "etcdv3" {
		set.Backend = "etcd" // confd's alias
	}
	if !validBackend(set.Backend) {
		return nil, &UsageError{Err: fmt.Errorf("invalid value %q for flag -backend: want one of %s",
			set.Backend, strings.Join(Backends, ", "))}
	}

	// cli.go's Run: loadConfigs (which finalizes), then Finalize again, then logging setup.
	cfg, exts, err := loadConfigs(st.configPaths, c.Copy(), st.exts)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	cfg.Finalize()
	if err := checkLogging(cfg); err != nil {
		return nil, &ConfigError{Err: err}
	}

	set.Config = cfg
	set.Dry = st.dry
	set.Version = st.isVersion
	set.ParseOnly = cfg.ParseOnly
	set.Files = files
	set.Nodes = nodes
	if len(set.Nodes) == 0 && set.Backend == "consul" {
		addr := config.StringVal(cfg.Consul.Address)
		if addr == "" {
			addr = DefaultConsulNode
		}
		set.Nodes = []string{addr}
	}
	for i, t := range *cfg.Templates {
		set.Templates = append(set.Templates, Template{
			TemplateConfig: t,
			CheckCommand:   exts[i].checkCommand,
			CheckTimeout:   exts[i].checkTimeout,
		})
	}
	return set, nil
}

func validBackend(b string) bool {
	for _, n := range Backends {
		if b == n {
			return true
		}
	}
	return false
}

// logLevels are consul-template's (logging.Levels); its logging setup fails on any other.
var logLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERR"}

// syslogFacilities are the facilities consul-template's syslog logger (go-syslog) knows.
var syslogFacilities = []string{"KERN", "USER", "MAIL", "DAEMON", "AUTH", "SYSLOG", "LPR", "NEWS", "UUCP",
	"CRON", "AUTHPRIV", "FTP", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4", "LOCAL5", "LOCAL6", "LOCAL7"}

// checkLogging fails as consul-template's logging setup does on a bad log level or syslog
// facility (exit 15). What the setup does on the system (open the log file, connect to syslog)
// is the caller's, whose failures consul-template also reports as config errors.
func checkLogging(c *config.Config) error {
	if err := checkLogLevel(config.StringVal(c.LogLevel)); err != nil {
		return err
	}
	if config.BoolVal(c.Syslog.Enabled) {
		f := strings.ToUpper(config.StringVal(c.Syslog.Facility))
		for _, v := range syslogFacilities {
			if f == v {
				return nil
			}
		}
		return fmt.Errorf("error setting up syslog logger: invalid syslog facility: %s", f)
	}
	return nil
}

func checkLogLevel(level string) error {
	l := strings.ToUpper(level)
	for _, v := range logLevels {
		if l == v {
			return nil
		}
	}
	return fmt.Errorf("invalid log level %q, valid log levels are %s", l, strings.Join(logLevels, ", "))
}
