#!/usr/bin/env bash
# Builds the HashiCorp Vault server used by the vault backend's tests from the Go module proxy
# and caches it outside the repository (about 16 minutes and 6 GB of memory once). The proxy
# serves github.com/hashicorp/vault@v1.21.4 but not its in-repo api/ and sdk/ modules, which its
# go.mod replaces with local paths: the replaces are dropped so the published api v1.22.0 and
# sdk v0.21.0 are used, and the three call sites that differ from sdk v0.21.0 are adapted
# (../shared/SERVERS.md). Prints the path of the binary on stdout.
set -euo pipefail
version=1.21.4
cache=${RECONF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reconf}
bin=$cache/vault-$version/vault
if [[ -x $bin ]] && "$bin" version 2>/dev/null | grep -q "v$version"; then
  echo "$bin"; exit 0
fi
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
go mod init reconf.local/vaultdl >&2
src=$(go mod download -json "github.com/hashicorp/vault@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d $src ]] || { echo "build-vault: module source not found" >&2; exit 1; }
cp -r "$src" vault
chmod -R u+w vault
cd vault
for m in api api/auth/approle api/auth/kubernetes api/auth/userpass sdk; do
  go mod edit -dropreplace "github.com/hashicorp/vault/$m"
done
# sdk v0.21.0: an activation function takes a third string argument.
perl -0pi -e 's/ActivationFunc: iStore\.activateDeduplication,/ActivationFunc: func(ctx context.Context, req *logical.Request, _ string) error { return iStore.activateDeduplication(ctx, req) },/' vault/identity_store.go
perl -0pi -e 's/b\.idStoreBackend\.ActivationFunc\(ctx, nil\)/b.idStoreBackend.ActivationFunc(ctx, nil, "")/' vault/logical_system_activation_flags.go
# sdk v0.21.0: RestorePolicy returns only an error; the restored key is the requested one.
perl -0pi -e 's/restoredKeyName, err := b\.lm\.RestorePolicy\(ctx, req\.Storage, keyName, backupB64, force\)/restoredKeyName := keyName\n\terr := b.lm.RestorePolicy(ctx, req.Storage, keyName, backupB64, force)/' builtin/logical/transit/path_restore.go
mkdir -p "$(dirname "$bin")"
GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" . >&2
mv "$bin.tmp" "$bin"
echo "$bin"
