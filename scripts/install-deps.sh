#!/usr/bin/env bash
# Installs the real servers reconf's tests run against (Debian packages) when they are missing,
# and builds the cached Consul agent. Needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server etcd-client)
[[ -f /usr/share/java/zookeeper.jar ]] || ls /usr/share/java/zookeeper*.jar >/dev/null 2>&1 || need+=(zookeeper)
command -v redis-server >/dev/null || need+=(redis-server)
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx)
command -v dpkg-deb >/dev/null || need+=(dpkg)
[[ -x /usr/sbin/dnsmasq ]] || need+=(dnsmasq-base) # a real DNS server for the SRV tests
command -v dockerd >/dev/null || need+=(docker.io) # the registrator tests' private engine
if ((${#need[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian starts the packaged services on install; the tests start their own on free ports.
for svc in etcd zookeeper redis-server haproxy nginx; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
"$(dirname "$0")/build-consul.sh" >/dev/null
"$(dirname "$0")/build-consul-template.sh" >/dev/null
