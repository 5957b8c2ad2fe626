#!/usr/bin/env bash
# Builds dist/reconf_<version>_<arch>.deb with Debian's own dpkg-deb from a staged tree:
# the binary, the default config (a conffile), the systemd unit, the man page and the bash
# completion (both generated from the binary's own flags). Prints the .deb's path.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
GO=${GO:-go}

# Version: the nearest tag (v1.2.3 → 1.2.3, with commits since as ~N.gSHA), else 0.0.0~git.
if desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
  version=${desc#v}
  version=${version/-/+}; version=${version/-/.}
else
  sha=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  when=$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d)
  version="0.0.0~git${when}.${sha}"
fi
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -d "$root/DEBIAN" "$root/usr/bin" "$root/etc/reconf/conf.d" "$root/etc/reconf/templates" \
  "$root/etc/default" "$root/lib/systemd/system" "$root/usr/share/man/man1" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/doc/reconf/examples"

CGO_ENABLED=0 $GO build -trimpath -ldflags "-s -w -X main.version=$version -X main.commit=$commit" \
  -o "$root/usr/bin/reconf" ./cmd/reconf
"$root/usr/bin/reconf" man | gzip -9n > "$root/usr/share/man/man1/reconf.1.gz"
"$root/usr/bin/reconf" completion bash > "$root/usr/share/bash-completion/completions/reconf"
install -m 0644 packaging/reconf.toml "$root/etc/reconf/reconf.toml"
install -m 0644 packaging/default "$root/etc/default/reconf"
install -m 0644 packaging/reconf.service "$root/lib/systemd/system/reconf.service"
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
install -d "$root/usr/share/lintian/overrides"
install -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/reconf"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
cp -r examples/haproxy "$root/usr/share/doc/reconf/examples/"
install -m 0644 README.md "$root/usr/share/doc/reconf/README.md"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: reconf"
  echo
  echo "Files: *"
  echo "Copyright: 2026 The reconf authors"
  echo "License: MIT"
  sed 's/^$/./; s/^/ /' LICENSE
} > "$root/usr/share/doc/reconf/copyright"
gzip -9n -c > "$root/usr/share/doc/reconf/changelog.gz" <<CL
reconf ($version) unstable; urgency=medium

  * Built from commit $commit.

 -- reconf maintainers <maintainers@reconf.dev>  $(date -R -d @"$(git log -1 --format=%ct 2>/dev/null || date +%s)")
CL
find "$root" -type d -exec chmod 0755 {} +
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" packaging/debian/control.in > "$root/DEBIAN/control"

mkdir -p dist
out=dist/reconf_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$top/$out"
