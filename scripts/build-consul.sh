#!/usr/bin/env bash
# Builds the Consul agent used by the integration tests from the Go module proxy and caches it
# outside the repository. Consul's go.mod replaces its own submodules with local paths, so
# `go install github.com/hashicorp/consul@v1.20.6` fails; a wrapper module pins the submodules
# at the versions Consul's go.mod asks for. Prints the path of the binary on stdout.
set -euo pipefail
version=1.20.6
cache=${RECONF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reconf}
bin=$cache/consul-$version/consul
if [[ -x $bin ]] && "$bin" version 2>/dev/null | grep -q "v$version"; then
  echo "$bin"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<MOD
module reconf.local/consulbuild

go 1.22

require (
	github.com/hashicorp/consul v$version
	github.com/hashicorp/consul/api v1.31.2
	github.com/hashicorp/consul/envoyextensions v0.7.3
	github.com/hashicorp/consul/proto-public v0.6.2
	github.com/hashicorp/consul/sdk v0.16.1
	github.com/hashicorp/consul/troubleshoot v0.7.1
)

exclude (
	github.com/hashicorp/go-msgpack v1.1.5
	github.com/hashicorp/go-msgpack v1.1.6
)
MOD
GOFLAGS=-mod=mod go mod download github.com/hashicorp/consul@v$version >&2
src=$(GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/hashicorp/consul)
cp "$src/go.sum" go.sum
chmod u+w go.sum
mkdir -p "$(dirname "$bin")"
GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -trimpath -o "$bin.tmp" github.com/hashicorp/consul >&2
mv "$bin.tmp" "$bin"
echo "$bin"
