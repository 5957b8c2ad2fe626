#!/bin/sh
# build-haproxy-image.sh [IMAGE]: builds a haproxy image offline (no registry) from this
# machine's haproxy binary (Debian's package) and the shared libraries ldd names, with
# docker import. It runs haproxy in master-worker mode on
# /usr/local/etc/haproxy/haproxy.cfg, as the official image does: `docker kill -s HUP` reloads.
set -eu
image=${1:-reconf-example/haproxy:local}
bin=$(command -v haproxy) || { echo "haproxy not found (apt-get install haproxy)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/sbin" "$root/usr/local/etc/haproxy" "$root/tmp" "$root/run" "$root/etc"
cp "$bin" "$root/usr/sbin/haproxy"
for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
chmod 1777 "$root/tmp"
echo 'root:x:0:0:root:/:/usr/sbin/haproxy' >"$root/etc/passwd"
tar -C "$root" -c . | docker import \
	-c 'CMD ["/usr/sbin/haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
	-c 'EXPOSE 8080/tcp' - "$image" >/dev/null
echo "$image"
