// Package resource loads template resources (the `[template]` tables of conf.d/**/*.toml, as
// confd reads them) and keeps each destination file in sync with its rendered template.
//
// Load reads and validates every resource file and parses its template. Sync fetches the
// resource's keys from a backend and hands the snapshot to Apply, which runs the pipeline:
//
//	render into memory → compare bytes, mode, uid, gid with the destination
//	  → stage ".<dest base><random>" in the destination's folder (written, fsynced, mode and
//	    owner set before anything can see it at dest)
//	  → check_cmd {{.src}} → rename over dest → fsync the folder
//	  → reload_cmd → on failure, put the previous file (bytes, mode, owner) back
//
// A render, check or backend failure never touches the destination. Commands are text/templates
// over {{.src}} and {{.dest}} ({{.src}} is the stage file for check_cmd and the destination for
// reload_cmd, which runs after the rename), run in their own process group: started directly
// when the expanded command is plain words and simple quoting that the shell would only split
// (see directArgs for the exact rule; the same arguments, PATH lookup, environment and exit
// status), by /bin/sh -c otherwise; a timeout (or a cancelled context) sends SIGTERM to the
// whole group and SIGKILL shortly after.
// A rename refused with EBUSY or EXDEV (a bind-mounted file) is replaced by writing in place.
//
// Mode: a resource's mode wins; unset, the existing file's mode is kept, else 0644; unset on a
// resource whose backend holds secrets (backends.SecretHolder), it is SecretMode (0600),
// logged once per resource. Such a resource's -noop diff shows which lines change, not
// their contents, and its errors have the values it read scrubbed out. Owner: uid
// and gid (or the owner and group names) win; unset, the existing file's owner is kept when we
// may (a non-root reconf cannot give a file away), else the effective ids. The outcome is a Result value: -noop, -sync-only and tests read
// it. Rendered contents never appear in logs or errors, only in the -noop diff.
package resource
