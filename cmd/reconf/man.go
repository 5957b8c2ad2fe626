package main

import (
	"fmt"
	"io"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/manpage"
)

// manPage describes reconf beyond its flags; the OPTIONS section comes from newFlagSet.
func manPage() manpage.Page {
	v, _ := buildVersion()
	return manpage.Page{
		Name:    "reconf",
		Section: "1",
		Date:    time.Now().UTC().Format("2006-01-02"),
		Version: v,
		Summary: "keep configuration files in step with a key-value store",
		Synopsis: []string{
			"[\\fIflags\\fR]",
			"register|deregister [\\fIflags\\fR]",
			"registrator [\\fIflags\\fR] \\fIURI\\fR",
			"man|completion bash",
		},
		Description: `reconf renders configuration files from templates with data from etcd, Consul, ZooKeeper, Redis, environment variables or YAML/JSON files. For each template resource (a TOML file in CONFDIR/conf.d) it renders the template in memory, compares it with the file on disk, stages it next to the destination, runs check_cmd on the staged file, renames it into place keeping owner and mode, and runs reload_cmd. A failed reload puts the previous file back.

It runs once (-onetime), on an interval (-interval), or watching the store (-watch), and is a drop-in replacement for confd: confd's flags, confd.toml keys, resource keys and template functions behave as confd's do.`,
		Sections: []manpage.Section{
			{Title: "Files", Body: `/etc/reconf/reconf.toml: settings (confd.toml keys accepted).

/etc/reconf/conf.d/*.toml: template resources.

/etc/reconf/templates/: templates.

/etc/default/reconf: RECONF_OPTS for the systemd unit.`},
			{Title: "Environment", Body: `RECONF_* variables set the option of the same name (RECONF_BACKEND, RECONF_NODES, RECONF_INTERVAL, …). NOTIFY_SOCKET and WATCHDOG_USEC come from systemd.`},
			{Title: "Signals", Body: `SIGHUP reloads the config file, conf.d and templates without dropping watches; a broken resource is refused and the old ones keep working. SIGTERM and SIGINT finish the resource in flight and exit 0.`},
			{Title: "Exit status", Body: `0 on success; 1 when a resource failed in -onetime mode or the backend could not be reached; 2 for a usage error (unknown flag, backend or bad value).`},
			{Title: "Examples", Body: `  reconf -onetime -backend file -file data.yaml -confdir /etc/confd
  reconf -watch -backend consul -node 127.0.0.1:8500 -wait 50ms:500ms
  reconf register -backend etcd -service web -address 10.0.0.7 -port 8080 -check http://10.0.0.7:8080/health
  reconf registrator -ip 10.0.0.7 consul://127.0.0.1:8500`},
			{Title: "See also", Body: `confd(1), haproxy(1), nginx(8), systemctl(1)`},
		},
	}
}

// docSubcommand prints the man page ("reconf man") or a shell completion script
// ("reconf completion bash"), both generated from the flag definitions.
func docSubcommand(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(&options{})
	switch {
	case len(args) == 1 && args[0] == "man":
		if err := manpage.Write(stdout, manPage(), fs); err != nil {
			fmt.Fprintln(stderr, "reconf man:", err)
			return 1
		}
		return 0
	case len(args) == 2 && args[0] == "completion" && args[1] == "bash":
		subs := []string{"register", "deregister", "registrator", "man", "completion"}
		if err := manpage.WriteBashCompletion(stdout, "reconf", fs, subs, backends.Names()); err != nil {
			fmt.Fprintln(stderr, "reconf completion:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(stderr, "usage: reconf man | reconf completion bash")
	return 2
}
