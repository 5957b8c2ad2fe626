#!/usr/bin/env bash
# The README's first command (`make run`): builds reconf and runs it on the haproxy example,
# reading examples/haproxy/data.yaml with the file backend and watching it. Output goes to a
# fresh folder (printed; set RECONF_RUN_DIR to choose it), never to /etc.
#
# The example's conf.d is copied there with dest pointing into that folder and a reload_cmd
# that only notes each reload in reload.log there (command output is not logged on success).
# check_cmd (`haproxy -c`) is kept when haproxy is installed and dropped, with a note, when it
# is not, so that this works on a fresh machine. RECONF_BIN runs a binary that is already
# built instead of building one. Extra arguments are passed on to reconf
# (e.g. `examples/run-default.sh -log-level debug`, or `-onetime`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
example=$root/examples/haproxy

bin=${RECONF_BIN:-}
if [[ -z $bin ]]; then
  bin=$root/bin/reconf
  (cd "$root" && go build -o bin/reconf ./cmd/reconf)
fi

run=${RECONF_RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/reconf-run.XXXXXX")}
mkdir -p "$run/confdir/conf.d"
rm -rf "$run/confdir/templates"
ln -s "$example/templates" "$run/confdir/templates" # template edits apply on SIGHUP

check='check_cmd = "haproxy -c -f {{.src}}"'
if ! command -v haproxy >/dev/null 2>&1; then
  check='# check_cmd dropped by run-default.sh: haproxy is not installed'
  echo "note: haproxy not found; running without check_cmd (haproxy -c)" >&2
fi
sed -e "s|^dest = .*|dest = \"$run/haproxy.cfg\"|" \
  -e "s|^check_cmd = .*|$check|" \
  -e "s|^reload_cmd = .*|reload_cmd = \"date '+%T reload_cmd: haproxy would reload {{.dest}} now' >>'$run/reload.log'\"|" \
  "$example/conf.d/haproxy.toml" >"$run/confdir/conf.d/haproxy.toml"

cat >&2 <<MSG
reconf: rendering $run/haproxy.cfg
        from $example/data.yaml (edit it: the file follows)
        reload_cmd appends to $run/reload.log
        confdir $run/confdir; stop with Ctrl-C
MSG
exec "$bin" -backend file -file "$example/data.yaml" -confdir "$run/confdir" \
  -config-file "$run/reconf.toml" -watch "$@"
