#!/usr/bin/env bash
# The Debian packages the images and the real node need, installed when missing (a fresh machine has none of
# them): podman builds the images, mmdebstrap makes their base, runc runs containers (Debian's crun 1.8 refuses
# this machine's hybrid cgroups), the CNI plugins wire pods to their bridge, iptables and conntrack serve
# kube-proxy, gcc builds the pause binary. containerd itself is built from the Go module proxy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PACKAGES=(podman runc mmdebstrap containernetworking-plugins iptables conntrack iproute2 openssl curl gcc libc6-dev)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
log "installing Debian packages: ${missing[*]}"
[ "$(id -u)" = 0 ] || { log "run as root (the real node needs it too), or install them: apt-get install ${missing[*]}"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
