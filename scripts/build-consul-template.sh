#!/usr/bin/env bash
# Installs consul-template, the oracle the consul-template dialect's differential tests
# (integration/ct) compare reconf with, from the Go module proxy and caches it outside the
# repository. Prints the path of the binary on stdout. Idempotent: a cached binary of the right
# version is reused.
set -euo pipefail
version=0.42.1
cache=${RECONF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reconf}
dir=$cache/consul-template-$version
bin=$dir/consul-template
if [[ -x $bin ]] && "$bin" -v 2>&1 | grep -q "v$version"; then
  echo "$bin"; exit 0
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd) # GOBIN must be absolute
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Outside any module, so that `go install pkg@version` uses consul-template's own go.mod.
cd "$work"
GOBIN=$work GOTOOLCHAIN=local go install "github.com/hashicorp/consul-template@v$version" >&2
cp "$work/consul-template" "$dir/consul-template.tmp"
mv "$dir/consul-template.tmp" "$dir/consul-template"
echo "$dir/consul-template"
